"""The gateway benchmark (issue 2, item 10): owstack against direct access and LiteLLM's proxy, same run.

    make bench                                   # = .venv/bin/python bench/gateway_bench.py
    .venv/bin/python bench/gateway_bench.py --quick                   # 3-second runs, a smoke check
    .venv/bin/python bench/gateway_bench.py --rounds 3 --variants all --profile owstack,owstack+metering

It installs what it needs through bench/setup.sh (nginx and wrk from Debian, LiteLLM in
bench/.venv-litellm), starts nginx serving a fixed chat completion and a fixed SSE stream, then measures
one contender at a time (never two at once): requests/s and p50/p99 at 1, 16 and 64 connections,
streaming requests/s, idle and loaded RSS; then the embedded engine's tokens/s through the gateway against
llama-cpp-python called directly. Prints Markdown tables, the performance bar with PASS/FAIL per line,
and writes bench/results/<UTC time>.json (a full run also bench/results/latest.json). See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gwbench import contenders, embedded, load, procs, profile, report, upstream

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_VARIANTS = ("owstack+metering", "owstack+secure")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3-second runs, 1-second warm-up, 3 embedded runs")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per request kind (default 3)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the contender sequence (order reversed in odd rounds); report medians (default 1)",
    )
    p.add_argument("--connections", default="1,16,64", help="non-streaming connection counts (default 1,16,64)")
    p.add_argument("--stream-connections", default="1,16", help="streaming connection counts (default 1,16)")
    p.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="owstack variants beside the core (gwbench/contenders.py: owstack+metering, owstack+secure, "
        "owstack+full, owstack+full-wal-nosync, ...); 'all'; 'none'",
    )
    p.add_argument("--skip-litellm", action="store_true", help="do not measure LiteLLM")
    p.add_argument("--skip-gateway", action="store_true", help="only the embedded engine (no nginx, wrk, LiteLLM)")
    p.add_argument("--skip-embedded", action="store_true", help="do not measure the embedded engine")
    p.add_argument("--embedded-runs", type=int, default=7, help="embedded runs per side (default 7)")
    p.add_argument("--max-tokens", type=int, default=128, help="embedded max_tokens (default 128)")
    p.add_argument(
        "--embedded-threads",
        type=int,
        help="llama.cpp threads on both sides (default: the embedded default's, min(cores, 8), with no config)",
    )
    p.add_argument("--no-pin", action="store_true", help="no CPU pinning (default: gateway on core 0, wrk+nginx on 1)")
    p.add_argument("--no-setup", action="store_true", help="skip bench/setup.sh (installs what is missing)")
    p.add_argument(
        "--profile",
        nargs="?",
        const="owstack",
        default="",
        metavar="NAMES",
        help="py-spy these contenders (default: owstack) during one more chat@16 and stream@16 run (round 1)",
    )
    p.add_argument(
        "--profile-cpu",
        action="store_true",
        help="profile CPU only (py-spy --gil: samples of threads running Python), not the time spent waiting",
    )
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    p.add_argument("--show", type=Path, metavar="JSON", help="print the tables of an earlier results file and exit")
    p.add_argument("--keep-temp", action="store_true", help="keep the temp dir (configs, logs, wrk outputs)")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.embedded_runs = 3.0, 1.0, 3
    return args


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _variants(text: str) -> list[str]:
    if text == "none":
        return []
    names = [n for n in contenders.VARIANTS if n != "owstack"] if text == "all" else text.split(",")
    for name in names:
        if name not in contenders.VARIANTS or name == "owstack":
            known = ", ".join([*(n for n in contenders.VARIANTS if n != "owstack"), "all", "none"])
            print(f"error: --variants: unknown variant {name!r}; choose from {known}", file=sys.stderr)
            sys.exit(2)
    return names


def ensure_tools(args: argparse.Namespace) -> None:
    """bench/setup.sh installs only what is missing (quick when all is there); --no-setup only checks."""
    if args.skip_gateway:
        return
    if not args.no_setup:
        subprocess.run(["bash", str(BENCH / "setup.sh")], check=True)
    missing = [t for t in ("nginx", "wrk") if shutil.which(t) is None]
    if not args.skip_litellm and not contenders.LITELLM.exists():
        missing.append("LiteLLM (bench/.venv-litellm)")
    if missing:
        sys.exit(f"error: missing {', '.join(missing)}; run bench/setup.sh")


def _cmd_out(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else None


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), platform.processor())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(ln.split()[1] for ln in meminfo if ln.startswith("MemTotal"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
    }


def fsync_ms(directory: Path, n: int = 30) -> float:
    """Median time of one fsync of a small append in `directory` (where the audit log lives): the floor
    of an audited request's latency at 1 connection."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 512)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return round(sorted(times)[n // 2] * 1e3, 2)


def versions() -> dict[str, Any]:
    rev = _cmd_out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _cmd_out(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"])
    import llama_cpp

    return {
        "owstack": contenders.owstack_version(),
        "owstack_commit": rev,
        "owstack_src_dirty": bool(dirty),
        "nginx": (_cmd_out(["nginx", "-v"]) or "").removeprefix("nginx version: ") or None,
        "wrk": " ".join((_cmd_out(["wrk", "-v"]) or "").split()[:2]) or None,
        "litellm": contenders.litellm_version() if contenders.LITELLM.exists() else None,
        "llama_cpp_python": llama_cpp.__version__,
    }


def run_contender(
    name: str,
    start: Any,
    settings: load.Settings,
    workdir: Path,
    results: dict[str, Any],
    profile_it: bool,
    gil: bool = False,
) -> None:
    """Start, measure, (profile,) stop one contender; a failure is recorded and the run goes on."""
    print(f"{name}: starting", flush=True)
    try:
        contender = start()
    except Exception as exc:  # a contender that cannot start is reported, the others still run
        print(f"{name}: could not start: {exc}", flush=True)
        results["contenders"][name] = {"error": str(exc)[-2000:]}
        return
    try:
        results["contenders"][name] = load.measure(contender, settings, workdir)
        if profile_it and contender.server is not None:
            slug = name.replace("+", "-")
            for kind, url in (("chat", contender.chat_url), ("stream", contender.stream_url)):
                print(f"{name}: profiling one {kind}@16 run with py-spy", flush=True)
                results.setdefault("profile", {})[f"{name} {kind}@16"] = profile.profile_run(
                    contender.server.pid,
                    url,
                    workdir / f"{slug}-{kind}.lua",
                    16,
                    settings.duration_s,
                    workdir / f"{slug}-{kind}-profile.txt",
                    set(settings.client_cores or ()) or None,
                    gil=gil,
                )
    except Exception as exc:
        print(f"{name}: failed: {exc}", flush=True)
        results["contenders"][name] = {"error": str(exc)[-2000:]}
    finally:
        contender.stop()


def gateway_part(
    args: argparse.Namespace, settings: load.Settings, variants: list[str], workdir: Path, results: dict[str, Any]
) -> None:
    """The rounds: each a fresh nginx and every contender in turn; the medians go into results["contenders"]."""
    rounds = []
    for i in range(args.rounds):
        if args.rounds > 1:
            print(f"round {i + 1} of {args.rounds}", flush=True)
        one: dict[str, Any] = {"contenders": {}}
        gateway_round(args, settings, variants, workdir / f"round{i + 1}", one, round_index=i)
        rounds.append(one["contenders"])
        if "profile" in one:
            results["profile"] = one["profile"]
        results["upstream_rss_mb"] = one.get("upstream_rss_mb")
    results["contenders"] = report.merge_rounds(rounds)
    if args.rounds > 1:
        results["rounds"] = rounds


def gateway_round(
    args: argparse.Namespace,
    settings: load.Settings,
    variants: list[str],
    workdir: Path,
    results: dict[str, Any],
    round_index: int = 0,
) -> None:
    """nginx up, then each contender in turn (direct, owstack and its variants, LiteLLM), nginx down.
    Odd rounds go in reverse order, so that a drift in the machine's load falls on every contender alike."""
    workdir.mkdir(parents=True, exist_ok=True)
    up_port = procs.free_port()
    client_cores = set(settings.client_cores) if settings.client_cores else None
    conf = upstream.write_conf(workdir, up_port)
    nginx = procs.start("nginx", upstream.nginx_command(conf), workdir=workdir, cores=client_cores)
    server_cores = set(settings.server_cores) if settings.server_cores else None
    try:
        procs.wait_http(nginx, f"http://127.0.0.1:{up_port}/health", timeout=30)
        plan: list[tuple[str, Any]] = [("direct", lambda: contenders.direct(up_port))]
        for name in ["owstack", *variants]:
            plan.append((name, lambda n=name: contenders.start_owstack(n, workdir, up_port, server_cores)))
        if not args.skip_litellm:
            plan.append(("litellm", lambda: contenders.start_litellm(workdir, up_port, server_cores)))
        for name, start in reversed(plan) if round_index % 2 else plan:
            profile_it = name in args.profile.split(",") and round_index == 0
            run_contender(name, start, settings, workdir, results, profile_it, args.profile_cpu)
        results["upstream_rss_mb"] = round(procs.tree_rss_mb(nginx.pid), 1)
    finally:
        nginx.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show is not None:
        results = json.loads(args.show.read_text())
        results["bars"], results["variants"] = report.bars(results), report.variant_criteria(results)
        print(report.markdown(results))
        for name, prof in results.get("profile", {}).items():
            print_profile(name, prof)
        return 0
    variants = _variants(args.variants)
    ensure_tools(args)
    settings = load.Settings(
        duration_s=args.duration,
        warmup_s=args.warmup,
        chat_connections=_ints(args.connections),
        stream_connections=_ints(args.stream_connections),
        server_cores=None if args.no_pin else frozenset({0}),
        client_cores=None if args.no_pin else frozenset({1}),
    )
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            **{k: v for k, v in vars(args).items() if k != "results_dir"},
            "pinning": "none" if args.no_pin else "gateway/LiteLLM on core 0; wrk and nginx on core 1",
        },
        "contenders": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="owstack-bench-"))
    results["machine"]["fsync_ms_p50"] = fsync_ms(workdir)
    if not args.skip_gateway:
        gateway_part(args, settings, variants, workdir, results)
    if not args.skip_embedded:
        print("embedded engine: owstack serve (embedded default) vs llama-cpp-python", flush=True)
        try:
            results["embedded"] = embedded.measure(workdir, args.embedded_runs, args.max_tokens, args.embedded_threads)
        except Exception as exc:
            print(f"embedded: failed: {exc}", flush=True)
            results["embedded"] = {"error": str(exc)[-2000:]}
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    results["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["bars"] = report.bars(results)
    results["variants"] = report.variant_criteria(results)
    write_results(results, args, started)
    print()
    print(report.markdown(results))
    for name, prof in results.get("profile", {}).items():
        print_profile(name, prof)
    if args.keep_temp:
        print(f"temp dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def write_results(results: dict[str, Any], args: argparse.Namespace, started: dt.datetime) -> None:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    text = json.dumps(results, indent=2, default=str) + "\n"
    path.write_text(text)
    print(f"results: {path}")
    if not (args.quick or args.skip_litellm or args.skip_gateway or args.skip_embedded):  # a full run only
        (args.results_dir / "latest.json").write_text(text)
        print(f"results: {args.results_dir / 'latest.json'}")


def print_profile(name: str, prof: dict[str, Any]) -> None:
    if "error" in prof:
        print(f"profile {name}: {prof['error']}")
        return
    print(f"py-spy, {name} ({prof['samples']} samples, {prof['rps_while_profiled']:.0f} req/s while sampled)")
    for title, key, n in (("self time by file", "self_by_file", 12), ("self time by frame", "self", 12),
                          ("inclusive time, owstack frames", "inclusive", 15)):  # fmt: skip
        print(f"  {title}:")
        for frame, pct in prof.get(key, [])[:n]:
            print(f"    {pct:5.1f}%  {frame}")


if __name__ == "__main__":
    sys.exit(main())
