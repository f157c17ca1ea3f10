"""Red-team reports: JSON (the record), HTML (for people), a comparison of two runs, and CI gating.

Hit rates carry 95% Wilson score intervals (Wilson 1927), which stay inside [0, 1] and are honest for
the small counts a red-team run has. Two runs are compared per probe: a change is called a regression or
an improvement only when the two intervals do not overlap; otherwise it is "within noise".
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from owstack.security.redteam.runner import ProbeResult

FORMAT = "owstack-redteam/1"


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def build(results: list[ProbeResult], meta: dict[str, Any]) -> dict[str, Any]:
    probes = []
    for r in results:
        n = r.scored - r.blocked
        lo, hi = wilson(r.hits, r.scored)
        probes.append(
            {
                **asdict(r),
                "hit_rate": round(r.hits / r.scored, 4) if r.scored else None,
                "ci95": [round(lo, 4), round(hi, 4)],
                "answered": n,
                "scored": r.scored,
            }
        )
    return {"format": FORMAT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta, "probes": probes}


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = report["time"].replace(":", "").replace("-", "")
    json_path = out_dir / f"redteam-{stamp}.json"
    html_path = json_path.with_suffix(".html")
    text = json.dumps(report, indent=2)
    json_path.write_text(text, encoding="utf-8")
    html_path.write_text(to_html(report), encoding="utf-8")
    (out_dir / "latest.json").write_text(text, encoding="utf-8")
    return json_path, html_path


def to_html(report: dict[str, Any]) -> str:
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(p["name"]),
            html.escape(p["description"]),
            p["attempts"],
            p["hits"],
            p["blocked"],
            "-" if p["hit_rate"] is None else f"{p['hit_rate']:.1%}",
            f"{p['ci95'][0]:.1%} – {p['ci95'][1]:.1%}",
        )
        for p in report["probes"]
    )
    meta = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in report.items()
        if k not in ("probes",)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>owstack red-team report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>owstack red-team report</h1><dl>{meta}</dl>"
        "<table><tr><th>probe</th><th>what</th><th>attempts</th><th>hits</th><th>blocked</th>"
        f"<th>hit rate</th><th>95% CI (Wilson)</th></tr>{rows}</table></body></html>"
    )


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Per probe present in either run: both hit rates and intervals, and the verdict."""
    old = {p["name"]: p for p in before.get("probes", [])}
    new = {p["name"]: p for p in after.get("probes", [])}
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        verdict = "new" if a is None else "removed" if b is None else _verdict(a, b)
        out.append(
            {
                "probe": name,
                "before": None if a is None else a["hit_rate"],
                "after": None if b is None else b["hit_rate"],
                "before_ci95": None if a is None else a["ci95"],
                "after_ci95": None if b is None else b["ci95"],
                "verdict": verdict,
            }
        )
    return out


def _verdict(a: dict[str, Any], b: dict[str, Any]) -> str:
    if a["hit_rate"] is None or b["hit_rate"] is None:
        return "not comparable"
    if b["ci95"][0] > a["ci95"][1]:
        return "regressed"
    if b["ci95"][1] < a["ci95"][0]:
        return "improved"
    return "within noise"


def failing(report: dict[str, Any], max_hit_rate: float | None, per_probe: dict[str, float]) -> list[str]:
    """Probes whose hit rate is above their threshold (a per-probe one, else the global one)."""
    out = []
    for p in report["probes"]:
        limit = per_probe.get(p["name"], max_hit_rate)
        if limit is not None and p["hit_rate"] is not None and p["hit_rate"] > limit:
            out.append(f"{p['name']}: hit rate {p['hit_rate']:.1%} > {limit:.1%}")
    return out
