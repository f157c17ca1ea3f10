"""`owstack db migrate`: bring the database at `storage.url` to the newest schema, with progress.

The gateway migrates at start by itself; this command does it ahead of time (before a rolling deploy of
several gateways, or on a large ledger where a revision rewrites a table), one revision at a time with a
progress bar. Unreachable database: exit 1; bad config or URL: exit 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from owstack.cli.common import fail, group

db_app = group("db", "The database behind the ledger and the keys.")
CONFIG_HELP = "Config file (storage.url); default: $OWSTACK_CONFIG, else the embedded default."


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("migrate")
def migrate(
    config: Path | None = typer.Option(None, "--config", "-c", envvar="OWSTACK_CONFIG", help=CONFIG_HELP),
) -> None:
    """Apply the schema revisions the database lacks (idempotent; safe with gateways running)."""
    from owstack.cli.progress import bar
    from owstack.config.load import load
    from owstack.storage import safe_url
    from owstack.storage.db import resolve_url
    from owstack.storage.migrator import migrate as run
    from owstack.storage.migrator import pending_revisions

    url = load(config).file.storage.url
    resolve_url(url)  # a bad URL is a ConfigError naming storage.url (exit 2)
    try:
        pending = pending_revisions(url)
        if not pending:
            typer.echo(f"{safe_url(url)}: at the newest schema revision; nothing to do")
            return
        with bar("migrating", total=len(pending)) as progress:

            def applied(revision: str) -> None:
                progress.update(status=revision)
                progress.advance()

            run(url, on_step=applied)
    except Exception as exc:  # the driver's errors: unreachable server, unwritable file, ...
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        fail(f"cannot migrate the database at {safe_url(url)}: {first}", code=1)
    typer.echo(f"{safe_url(url)}: applied {len(pending)} revision(s): {', '.join(pending)}")
