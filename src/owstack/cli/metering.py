"""CLI commands of the metering group: `owstack usage` and `owstack savings`.

Both read the ledger at the config's `storage.url` (default: owstack.db next to the config file, or in
the data directory without one). Usage errors (a bad --by, --since or config) print one `error:` line and
exit 2; a database that cannot be reached exits 1; a ledger that does not exist yet or has no rows says so
and exits 0.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from owstack.cli.common import fail

if TYPE_CHECKING:
    from owstack.config.load import Config

CONFIG_HELP = (
    "Config file (storage.url, backends, counterfactual); default: $OWSTACK_CONFIG, else the embedded default."
)
DATE_HELP = "YYYY-MM-DD (UTC), an ISO 8601 time, or a duration back from now: 30m, 24h, 7d, 2w."
BY_CHOICES = ("layer", "backend", "tenant", "day", "model")
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.command("usage")(usage_cmd)
    app.command("savings")(savings_cmd)


def parse_when(option: str, value: str | None, *, end: bool = False, now: datetime | None = None) -> datetime | None:
    """A --since/--until value as an aware UTC datetime. A bare date as --until means the end of that day."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    text = value.strip()
    match = _DURATION.match(text.lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) if end else day
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not a date; use {DATE_HELP}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _config(path: Path | None) -> Config:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        return load(path)
    except ConfigError as error:
        fail(str(error))


def _ledger_ready(url: str, as_json: bool) -> bool:
    """False (after saying so) when there is nothing to report; exits 1 when the database is unreachable."""
    from owstack.errors import ConfigError
    from owstack.metering.report import ledger_status
    from owstack.storage import safe_url

    try:
        status = ledger_status(url)
    except ConfigError as error:
        fail(str(error))
    except Exception as error:  # the driver's errors: unreachable server, unreadable file, ...
        first = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
        fail(f"cannot read the ledger at {safe_url(url)}: {first}", code=1)
    if status == "ok":
        return True
    message = (
        f"no ledger at {safe_url(url)} yet: start the gateway (owstack serve) and send requests"
        if status == "missing"
        else f"the ledger at {safe_url(url)} has no requests yet"
    )
    if as_json:
        typer.echo(json.dumps({"ledger": status, "message": message}, indent=2))
    else:
        typer.echo(message)
    return False


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _fmt_usd(value: float) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.4f}" if abs(value) < 10 else f"{sign}${abs(value):,.2f}"


def _fmt_span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.0f} minutes"


def usage_cmd(
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
    since: str | None = typer.Option(None, "--since", help=f"From (inclusive): {DATE_HELP}"),
    until: str | None = typer.Option(
        None, "--until", help=f"Up to (exclusive; a bare date includes that day): {DATE_HELP}"
    ),
    by: str = typer.Option("layer", "--by", help=f"Group by: {', '.join(BY_CHOICES)}."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Requests, errors, tokens, latency, self-hosted cost and the proprietary counterfactual from the ledger."""
    if by not in BY_CHOICES:
        fail(f"--by: {by!r} is not one of {', '.join(BY_CHOICES)}")
    start, end = parse_when("--since", since), parse_when("--until", until, end=True)
    if start and end and start >= end:
        fail("--since must be before --until")
    url = _config(config_path).file.storage.url
    if not _ledger_ready(url, as_json):
        return
    from owstack.metering.report import usage

    report = usage(url, start, end, by)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_usage(report)


_USAGE_COLUMNS = ("requests", "errors", "prompt", "completion", "reasoning", "cached", "p50", "p95", "TTFT p50",
                  "actual $", "counterfactual $", "saved $")  # fmt: skip
#: the table's width when stdout is not a terminal (a pipe, a file): wide enough for every column
PIPE_WIDTH = 160


def _print_usage(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    start = report.since.isoformat(timespec="seconds") if report.since else "first record"
    window = f"{start} .. {report.until.isoformat(timespec='seconds') if report.until else 'now'}"
    table = Table(title=f"Usage by {report.by} ({window})")
    table.add_column(report.by)
    for name in _USAGE_COLUMNS:
        table.add_column(name, justify="right")
    for g in [*report.groups, report.total]:
        table.add_row(
            g.key,
            f"{g.requests:,}",
            f"{g.errors:,}",
            f"{g.prompt_tokens:,}",
            f"{g.completion_tokens:,}",
            f"{g.reasoning_tokens:,}",
            f"{g.cached_tokens:,}",
            _fmt_s(g.latency_p50_s),
            _fmt_s(g.latency_p95_s),
            _fmt_s(g.ttft_p50_s),
            _fmt_usd(g.cost_usd),
            _fmt_usd(g.counterfactual_usd),
            _fmt_usd(g.savings_usd),
            end_section=g is report.groups[-1] if report.groups else False,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    console.print(table)
    notes = []
    if report.total.estimated:
        notes.append(f"{report.total.estimated:,} requests had their tokens estimated (no usage from the upstream)")
    if report.total.uncosted:
        notes.append(f"{report.total.uncosted:,} requests ran on backends with no `hardware:` profile and have no cost")
    for note in notes:
        console.print(f"note: {note}")


def _capex(config: Config) -> tuple[float | None, str | None]:
    """The payback target: `metering.capex_usd`, else the owned hardware profiles' purchase prices."""
    from owstack.errors import ConfigError
    from owstack.metering.costs import Pricing

    configured = config.file.metering.capex_usd
    if configured is not None:
        return configured, "metering.capex_usd"
    try:
        total = Pricing.from_config(config).capex_usd()
    except ConfigError as error:
        fail(str(error))
    return (total, "hardware profiles of the backends") if total > 0 else (None, None)


def savings_cmd(
    config_path: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """What self-hosting saved against the proprietary counterfactual: to date, this month, and payback."""
    config = _config(config_path)
    url = config.file.storage.url
    capex, source = _capex(config)
    if not _ledger_ready(url, as_json):
        return
    from owstack.metering.report import savings

    result = savings(url, capex, capex_source=source)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_savings(result)


def _print_savings(r: dict[str, Any]) -> None:
    t, m, rate, p = r["to_date"], r["month"], r["run_rate"], r["payback"]
    since = (t["first"] or "")[:10]
    lines = [
        f"To date (since {since}, {t['requests']:,} requests):",
        f"  counterfactual {_fmt_usd(t['counterfactual_usd'])}  actual {_fmt_usd(t['cost_usd'])}  "
        f"saved {_fmt_usd(t['savings_usd'])}",
        f"This month ({m['start'][:7]}): saved {_fmt_usd(m['savings_usd'])} so far; "
        f"projected {_fmt_usd(m['projected_savings_usd'])} by {m['end'][:10]} "
        f"(run rate {_fmt_usd(rate['savings_usd_per_day'])}/day over the last {_fmt_span(rate['window_s'])})",
    ]
    if p is None:
        lines.append("Payback: no capex configured (metering.capex_usd) and no owned hardware profile.")
    else:
        when = p["projected_date"][:10] if p["projected_date"] else "not at the current run rate"
        lines.append(
            f"Payback of {_fmt_usd(p['capex_usd'])} ({p['capex_source']}): {p['progress']:.1%} recovered "
            f"({_fmt_usd(p['recovered_usd'])}); {_fmt_usd(p['remaining_usd'])} to go; projected: {when}"
        )
    if t["uncosted"]:
        lines.append(f"note: {t['uncosted']:,} requests ran on backends with no `hardware:` profile and have no cost")
    typer.echo("\n".join(lines))
