"""The harness' table (rich) for one policy, and optionally its baseline, per difficulty bucket."""

from __future__ import annotations

from typing import Any


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _ci(pair: list[float] | tuple[float, float]) -> str:
    return f"[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def _row(label: str, bucket: str, s: dict[str, Any], comp: dict[str, Any] | None) -> list[str]:
    compression = "" if comp is None else f"{_pct(comp['compression'])} {_ci(comp['compression_ci'])}"
    return [
        label,
        bucket,
        str(s["n"]),
        f"{_pct(s['accuracy'])} {_ci(s['accuracy_ci'])}",
        str(s["parse_failures"]),
        f"{s['mean_completion_tokens']:.1f}",
        f"{s['median_completion_tokens']:.1f}",
        _pct(s["truncation_rate"]),
        compression,
    ]


def table(report: dict[str, Any], title: str) -> Any:
    from rich.table import Table

    out = Table(title=title)
    for name in (
        "policy",
        "bucket",
        "n",
        "accuracy [95% CI]",
        "parse fail",
        "mean tok",
        "median tok",
        "truncated",
        "compression [95% CI]",
    ):
        out.add_column(name, justify="left" if name in ("policy", "bucket") else "right")
    runs = [("baseline", report["baseline"])] if "baseline" in report else []
    runs.append(("policy", report))
    if "compared_to" in report:
        earlier = report["compared_to"]
        out.add_row(*_row(f"{earlier['policy']} in {earlier['file']}", "all", earlier, None))
        out.add_row(*_row(f"{report['policy']} vs that file", "all", report, earlier["compression"]))
    for kind, run in runs:
        comp_all = report.get("compression") if kind == "policy" else None
        out.add_row(*_row(str(run["policy"]), "all", run, comp_all))
        for bucket, summary in run.get("buckets", {}).items():
            comp = comp_all["buckets"].get(bucket) if comp_all else None
            out.add_row(*_row("", bucket, summary, comp))
    return out
