"""Streamed text with a live status line under it, for long generations on a terminal.

Finished lines are printed for good as they complete; the line still being written and a status line
(spinner, tokens, speed, time) are redrawn below them. When the stream ends the status line goes away and
what is left on screen is exactly the text, as if it had been printed plainly. On anything but a terminal
(a pipe, a file, a test) the text is written as it arrives and nothing else is drawn.

    with LiveText(console) as out:
        out.status("waiting for the first token")
        out.write("Paris is")          # any piece of text, newlines included
        out.status("edge-local: 12 tokens, 40 tok/s")
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text


class LiveText:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.live_mode = self.console.is_terminal
        self._partial = Text()
        self._spinner = Spinner("dots", text=Text("", style="dim"))
        self._live: Live | None = None
        self.wrote_newline_last = True

    def __enter__(self) -> LiveText:
        if self.live_mode:
            self._live = Live(
                self._renderable(), console=self.console, transient=True, refresh_per_second=8, redirect_stdout=False
            )
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)
            self._live = None
            if self._partial.plain:
                self.console.print(self._partial, end="", soft_wrap=True)
        self._partial = Text()

    def write(self, text: str, style: str | None = None) -> None:
        """Add text to the stream (styled, e.g. dim reasoning, only on a terminal)."""
        if not text:
            return
        self.wrote_newline_last = text.endswith("\n")
        if self._live is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        *done, rest = text.split("\n")
        for line in done:
            self._partial.append(line, style=style)
            self._live.console.print(self._partial, soft_wrap=True)
            self._partial = Text()
        self._partial.append(rest, style=style)
        self._live.update(self._renderable())

    def status(self, text: str) -> None:
        """Replace the status line (shown only on a terminal)."""
        self._spinner.update(text=Text(text, style="dim"))
        if self._live is not None:
            self._live.update(self._renderable())

    def _renderable(self) -> Group:
        return Group(self._partial, self._spinner) if self._partial.plain else Group(self._spinner)
