"""Small helpers shared by the CLI commands: one way to fail, one way to make a command group, and the
root group that turns a user's mistake into one `error:` line (exit 2) instead of a traceback.

Exit codes, everywhere: 0 done, 1 the work failed (a damaged log, an unreachable gateway, findings at or
above --fail-on), 2 a usage or configuration error.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from typing import Any, Literal, NoReturn

import typer
from typer.core import TyperGroup

from owstack.errors import ConfigError

#: set to 1 to see the traceback of an unexpected error (a bug: please report it)
DEBUG_ENV = "OWSTACK_DEBUG"
LogLevel = Literal["debug", "info", "warning", "error"]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error (no traceback) and exit: 2 for usage errors, 1 for failures."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _short(value: object, limit: int = 200) -> str:
    text = os.fsdecode(value) if isinstance(value, bytes | str) else str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def http_url(value: str, flag: str) -> str:
    """`value` if it is an http(s) URL with a host (and a valid port); otherwise exit 2 naming `flag`."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError as exc:  # a bad port, unbalanced IPv6 brackets
        fail(f"{flag}: {_short(value)} is not a valid URL ({exc})")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        fail(f"{flag}: {_short(value)} is not an http(s) URL with a host, e.g. http://127.0.0.1:8000/v1")
    return value


def header_value(value: str, flag: str) -> str:
    """`value` if it can be sent in an HTTP header (printable ASCII: an API key); otherwise exit 2."""
    if not value.isascii() or not value.isprintable():
        fail(f"{flag}: the value must be printable ASCII (it is sent in an HTTP header)")
    return value


def require_extra(extra: str, *modules: str) -> None:
    """Exit 2 with the install command when an optional extra (`owstack[train]`, ...) is not installed.

    Checked with `importlib.util.find_spec`, which imports nothing: serving and the commands that do not
    need the extra never load it."""
    missing = [name for name in modules if not _installed(name)]
    if missing:
        fail(f"this command needs {', '.join(missing)} (not installed): pip install 'owstack[{extra}]'")


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a half-imported module
        return False


def group(name: str, help: str) -> typer.Typer:
    """A command group whose help shows text as written: square brackets and defaults stay visible."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode=None)


class RootGroup(TyperGroup):
    """Catches what escapes a command: a `ConfigError` is the user's to fix (exit 2, the message names the
    field); anything else is a bug, reported in one line unless OWSTACK_DEBUG=1 asks for the traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer.core passes its own click Context
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(str(exc), code=2)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors, --help, exit codes
            raise
        except OSError as exc:  # a path the user gave that cannot be used: missing, a directory, too long, ...
            where = f": {_short(exc.filename)}" if exc.filename is not None else ""
            fail(f"{exc.strerror or exc}{where}", code=1)
        except UnicodeDecodeError as exc:  # a file the user gave that is not UTF-8 text
            fail(f"a file given is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8")
        except RecursionError:  # input nested deeper than Python's stack (JSON or YAML the user gave)
            fail("the input nests too deeply to be read")
        except Exception as exc:
            if os.environ.get(DEBUG_ENV) == "1":
                traceback.print_exc()
            else:
                typer.echo(
                    f"error: unexpected {type(exc).__name__}: {exc} "
                    f"(this is a bug; rerun with {DEBUG_ENV}=1 for the traceback and report it)",
                    err=True,
                )
            raise typer.Exit(1) from None
