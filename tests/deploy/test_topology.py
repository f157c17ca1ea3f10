"""The deployment's topology, run as processes (no container engine runs on this machine): three
`owstack serve` instances behind nginx with deploy/compose/nginx.conf (its upstream block pointed at the
instances' ports), and static checks of the Dockerfile and the compose file, whose config must load.

Through nginx: requests are spread round-robin over every instance, a stream arrives whole and unbuffered
frame by frame, and an instance stopped with SIGTERM mid-load costs no request (nginx moves a refused
connection to the next instance; requests in flight drain)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from procs import Proc, free_port, run_gateways, upstream_backend, wait_http

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def nginx_conf(ports: list[int], listen: int, tmp: Path) -> str:
    """The shipped nginx.conf with the instances' addresses, the listen port and its paths in `tmp`."""
    text = (DEPLOY / "compose" / "nginx.conf").read_text()
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
    text, n = re.subn(
        r"( *# BEGIN owstack instances\n).*?( *# END owstack instances)", rf"\g<1>{servers}\g<2>", text, flags=re.S
    )
    assert n == 1, "nginx.conf lost its instance markers"
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen};").replace("/tmp/", f"{tmp}/nginx-")
    return text


@pytest.fixture
def fleet(fake_upstream: Proc, tmp_path: Path) -> Iterator[dict[str, Any]]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (`make install` installs Debian's nginx)")
    config = {
        "backends": {"up": upstream_backend(fake_upstream, "fleet-model")},
        "layers": {layer: {"backends": ["up"]} for layer in ("coding", "multimodal", "edge")},
        "audit": {"enabled": False},
        "server": {"drain_delay_s": 1, "shutdown_grace_s": 20},
    }
    with run_gateways(tmp_path, config, 3) as (a, b, c):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(nginx_conf([a.port, b.port, c.port], port, tmp_path))
        log = tmp_path / "nginx.log"
        proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, log, timeout=30)
            yield {"lb": f"http://127.0.0.1:{port}", "gws": [a, b, c]}
        finally:
            proc.terminate()
            proc.wait(10)


def served(gw: Proc) -> float:
    text = httpx.get(gw.url + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("owstack_requests_total{")
    )


def ask(http: httpx.Client, lb: str) -> int:
    body = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}
    return http.post(lb + "/v1/chat/completions", json=body).status_code


def test_nginx_spreads_requests_over_every_instance_and_streams_pass_whole(fleet: dict[str, Any]) -> None:
    with httpx.Client(timeout=30) as http:
        assert [ask(http, fleet["lb"]) for _ in range(30)] == [200] * 30
        body = {"model": "edge", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with http.stream("POST", fleet["lb"] + "/v1/chat/completions", json=body) as r:
            frames = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert all(served(gw) >= 8 for gw in fleet["gws"]), [served(gw) for gw in fleet["gws"]]
    assert frames[-1] == "data: [DONE]" and len(frames) > 3
    assert "".join(frames).count("fleet-model") >= 1


def test_an_instance_stopped_mid_load_costs_no_request(fleet: dict[str, Any]) -> None:
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                statuses.append(ask(http, fleet["lb"]))

    with ThreadPoolExecutor(4) as pool:
        loaders = [pool.submit(load) for _ in range(4)]
        while len(statuses) < 50:
            threading.Event().wait(0.05)
        victim = fleet["gws"][1]
        victim.proc.send_signal(signal.SIGTERM)
        assert victim.proc.wait(60) is not None
        count = len(statuses)
        while len(statuses) < count + 100:
            threading.Event().wait(0.05)
        stop.set()
        for f in loaders:
            f.result(timeout=60)
    assert set(statuses) == {200}, sorted(set(statuses))


def test_the_dockerfile_runs_as_a_user_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.M)
    assert "--config" in text and "/etc/owstack/owstack.yaml" in text


def test_the_compose_file_has_two_gateways_behind_nginx_with_their_stores() -> None:
    from owstack.config.load import from_dict

    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway-1", "gateway-2", "nginx", "postgres", "redis"} <= set(services)
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    for gateway in ("gateway-1", "gateway-2"):
        assert "./owstack.yaml:/etc/owstack/owstack.yaml:ro" in services[gateway]["volumes"]
        assert services[gateway]["depends_on"]["postgres"]["condition"] == "service_healthy"
    upstream = re.search(r"upstream owstack \{(.*?)\}", (DEPLOY / "compose" / "nginx.conf").read_text(), re.S)
    assert upstream and "gateway-1:8000" in upstream.group(1) and "gateway-2:8000" in upstream.group(1)
    config = from_dict(yaml.safe_load((DEPLOY / "compose" / "owstack.yaml").read_text()))
    assert config.file.redis and config.file.storage.url.startswith("postgresql://")
    grace = int(services["gateway-1"]["stop_grace_period"].rstrip("s"))
    assert grace >= config.file.server.drain_delay_s + config.file.server.shutdown_grace_s
