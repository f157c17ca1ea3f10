"""The shared progress helpers: a bar with count, elapsed time and ETA on a terminal; nothing elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from owstack.cli.progress import bar, status


def test_a_bar_on_a_terminal_shows_count_eta_and_status() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with bar("migrating", total=4, console=console) as progress:
        progress.advance()
        progress.update(status="0002_keys")
        progress.advance(2)
        console.print("between")  # printing while the bar is up redraws it under the text
    raw = screen.getvalue()
    assert "migrating" in raw and "3/4" in raw and "eta" in raw and "0002_keys" in raw


def test_an_unknown_total_still_counts() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with bar("scanning", total=None, console=console) as progress:
        progress.advance(7)
        console.print("x")
    assert "scanning" in screen.getvalue() and "7/?" in screen.getvalue()


def test_nothing_is_drawn_off_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=False)
    with bar("eval", total=3, console=console) as progress:
        progress.advance(3)
    with status("loading", console=console) as say:
        say("still loading")
    assert screen.getvalue() == ""
