"""The gateway benchmark's wrk-output parser and its bar arithmetic (no timing: outputs are fixed text)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from gwbench import report, upstream, wrk

# wrk 4.1.0 (Debian) output of real runs, the second with error lines as wrk prints them
FAST = """Running 3s test @ http://127.0.0.1:51661/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   227.02us  331.25us   4.99ms   96.69%
    Req/Sec    63.72k     8.78k   69.45k    86.67%
  Latency Distribution
     50%  175.00us
     75%  191.00us
     90%  221.00us
     99%    2.01ms
  190065 requests in 3.00s, 81.20MB read
Requests/sec:  63343.34
Transfer/sec:     27.06MB
"""

SLOW = """Running 3s test @ http://127.0.0.1:49969/v1/chat/completions
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.13s   295.97ms   2.26s    86.57%
    Req/Sec    81.23    147.74   430.00     84.62%
  Latency Distribution
     50%    1.19s \n     75%    1.30s \n     90%    1.32s \n     99%    2.14s \n  134 requests in 3.01s, 202.79KB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 5
Requests/sec:     44.51
Transfer/sec:     67.35KB
"""


def test_parse_microsecond_run() -> None:
    r = wrk.parse(FAST)
    assert (r.connections, r.requests, r.duration_s, r.rps) == (16, 190065, 3.0, 63343.34)
    assert r.latency_ms["p50"] == pytest.approx(0.175)
    assert r.latency_ms["p99"] == pytest.approx(2.01)
    assert r.latency_ms["avg"] == pytest.approx(0.22702)
    assert r.latency_ms["max"] == pytest.approx(4.99)
    assert r.bytes_read == round(81.2 * 1024**2)
    assert r.errors == 0


def test_parse_second_run_with_errors() -> None:
    r = wrk.parse(SLOW)
    assert (r.connections, r.requests, r.rps) == (64, 134, 44.51)
    assert r.latency_ms["p50"] == pytest.approx(1190.0)
    assert r.latency_ms["p90"] == pytest.approx(1320.0)
    assert r.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 7}
    assert r.non_2xx == 5
    assert r.errors == 14
    assert r.to_dict()["errors"] == 14


def test_parse_refuses_output_without_summary() -> None:
    with pytest.raises(wrk.WrkOutputError, match="unable to connect"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(("text", "ms"), [("12us", 0.012), ("3.5ms", 3.5), ("2.00s", 2000.0), ("1.50m", 90000.0)])
def test_units(text: str, ms: float) -> None:
    assert wrk.to_ms(text) == pytest.approx(ms)


def test_lua_script_escapes_the_body() -> None:
    script = wrk.lua_script({"model": "edge", "messages": [{"role": "user", "content": 'say "hi"\n'}]}, {"X-K": "v"})
    assert 'wrk.method = "POST"' in script
    assert r"\"content\":\"say \\\"hi\\\"\\n\"" in script
    assert 'wrk.headers["X-K"] = "v"' in script


def test_upstream_stream_body_is_openai_sse() -> None:
    body = upstream.stream_body()
    events = [e for e in body.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
    assert '"usage"' in events[-2]
    assert "$" not in upstream.nginx_conf(Path("/tmp/x"), 1234)


def _run(rps: float, p50: float) -> dict[str, object]:
    return {"rps": rps, "latency_ms": {"p50": p50}}


def test_bars_pass_and_fail() -> None:
    results = {
        "contenders": {
            "direct": {"runs": {"chat@1": _run(40000, 0.02)}},
            "owstack": {
                "idle_rss_mb": 55.0,
                "runs": {"chat@1": _run(2000, 0.9), "chat@16": _run(3100, 5), "stream@16": _run(1500, 9)},
            },
            "litellm": {"runs": {"chat@16": _run(100, 100), "stream@16": _run(40, 300)}},
        },
        "embedded": {"ratio": 0.95},
    }
    verdicts = {b["bar"]: (b["value"], b["result"]) for b in report.bars(results)}
    assert verdicts["non-streaming req/s at 16 connections vs LiteLLM"] == (31.0, "PASS")
    assert verdicts["p50 added latency at 1 connection over direct"] == (0.88, "FAIL")
    assert verdicts["streaming req/s vs LiteLLM (16 connections)"] == (37.5, "PASS")
    assert verdicts["idle RSS before the model loads"] == (55.0, "PASS")
    results["contenders"].pop("litellm")
    assert report.bars(results)[0]["result"] == "n/a"


def test_the_metering_bar_pairs_each_round_with_its_own_core_run() -> None:
    """Rounds 1-3, core 1000/2000/1000 req/s and metering 950/1500/920: the ratio of the medians is
    950/1000 = 0.95, the rounds' own ratios 0.95, 0.75, 0.92, whose median is 0.92."""
    core = {"rps": 1000, "rps_rounds": [1000, 2000, 1000], "latency_ms": {}}
    metering = {"rps": 950, "rps_rounds": [950, 1500, 920], "latency_ms": {}}
    results = {
        "contenders": {"owstack": {"runs": {"chat@16": core}}, "owstack+metering": {"runs": {"chat@16": metering}}}
    }
    verdicts = {b["bar"]: (b["value"], b["result"]) for b in report.variant_criteria(results)}
    assert verdicts["metering on vs off, req/s chat@16 (issue 3)"] == (0.95, "PASS")
    assert verdicts["metering on vs off, req/s chat@16, median of the rounds' own ratios (issue 3)"] == (0.92, "PASS")
    assert verdicts["metering on vs off, req/s stream@16, median of the rounds' own ratios (issue 3)"][1] == "n/a"
    metering["rps_rounds"] = [950, 1500]  # fewer than three rounds: no paired figure
    verdicts = {b["bar"]: (b["value"], b["result"]) for b in report.variant_criteria(results)}
    assert verdicts["metering on vs off, req/s chat@16, median of the rounds' own ratios (issue 3)"][1] == "n/a"


def test_instructions_per_run_are_read_from_the_driver_and_callgrind() -> None:
    import inprocess_instructions as ii

    out = "owstack+full round 1: 1984 requests {200: 1984}, 83 req/s, CPU 10454 µs/request (MainThread 7319)\n"
    callgrind = "# callgrind format\nversion: 1\nevents: Ir\nsummary: 5887301878\ntotals: 5887301878\n"
    assert ii.parse(out, callgrind, 0) == (5_887_301_878, 1984)
    with pytest.raises(SystemExit, match="exit 1"):
        ii.parse(out, callgrind, 1)
    with pytest.raises(SystemExit):
        ii.parse("Traceback (most recent call last):\n", callgrind, 0)
    with pytest.raises(SystemExit):
        ii.parse(out, "", 0)
