"""Render chat templates (Jinja code shipped inside model files) only in jinja2's immutable sandbox.

Chat templates are code: CVE-2024-34359 (llama-cpp-python) and CVE-2026-5760 (SGLang) were server-side
template injection through them. Every template owstack renders goes through `render`, which adds to the
sandbox (no `_`-attributes, no mutation of lists and dicts, calls checked) limits against resource abuse:
`range` capped at 10,000 items, repetition (`*`), power (`**`), `+` and `~` results capped, output capped at
4 MiB, and the render stopped after 2 s (checked on every loop step, call and concatenation). The filters,
methods and globals that build a large result in one step are checked before they run: a width, count or
paragraph size past the caps (`center`, `indent`, `batch`, `slice`, `wordwrap`, `truncate`, `str.center`,
`ljust`, `rjust`, `zfill`, `expandtabs`, `lipsum`), a `replace` or `join` whose result would pass 4 MiB, and
a `%` or `format` string with a width or precision past 4 MiB (`'%0999999999d' % 1` allocates a gigabyte in
one step, and `[1]|slice(10**8)` loops for minutes without passing any check). Scan and pin templates
(`owstack scan --models`) rather than render unknown ones.

`find_ssti(source)` reports server-side-template-injection constructs without rendering anything.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from owstack.security.template_ssti import TemplateIssue, analyse

MAX_RANGE = 10_000
MAX_ITEMS = 1_000_000
MAX_OUTPUT_CHARS = 4 * 1024 * 1024
TIMEOUT_S = 2.0
_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("owstack_template_deadline", default=0.0)


class TemplateRenderError(ValueError):
    """A template that does not compile or fails while rendering (sandbox violations included)."""


class TemplateSandboxViolation(TemplateRenderError):
    """The template tried something the sandbox forbids (attribute of a private name, mutation, a limit)."""


def _raise_exception(message: str) -> None:
    raise TemplateRenderError(message)


def _check_deadline() -> None:
    deadline = _DEADLINE.get()
    if deadline and time.monotonic() > deadline:
        raise TemplateSandboxViolation(f"chat template took longer than {TIMEOUT_S} s")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _range(*args: int) -> Iterator[int]:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateSandboxViolation(f"range of {len(r)} items exceeds {MAX_RANGE}")
    for i in r:
        _check_deadline()
        yield i


_WIDE = re.compile(r"\d{8,}")  # a width or precision of 10**7 or more in a %- or {}-format string
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _too_large(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS


def _check_format(fmt: Any, args: Any) -> None:
    """A %- or {}-format string whose width or precision (literal, or `*`/nested from the arguments) builds
    more than the output cap."""
    if not isinstance(fmt, str):
        return
    values = args if isinstance(args, tuple | list) else list(args.values()) if isinstance(args, dict) else [args]
    dynamic = "*" in fmt or _NESTED_SPEC.search(fmt) is not None  # a width taken from the arguments
    if _WIDE.search(fmt) or (dynamic and any(_too_large(v) for v in values)):
        raise TemplateSandboxViolation("format width or precision larger than the output cap")


def _estimate_replace(value: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        hits = value.count(old) if old else len(value) + 1
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            hits = min(hits, count)
        if len(value) + hits * max(0, len(new) - len(old)) > MAX_OUTPUT_CHARS:
            raise TemplateSandboxViolation(f"replace result larger than {MAX_OUTPUT_CHARS} characters")


def _estimate_join(items: Any, sep: Any) -> None:
    if isinstance(items, list | tuple) and isinstance(sep, str):
        total = len(sep) * max(len(items) - 1, 0) + sum(len(i) for i in items if isinstance(i, str))
        if total > MAX_OUTPUT_CHARS:
            raise TemplateSandboxViolation(f"join result larger than {MAX_OUTPUT_CHARS} characters")


def _filter_check(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Checks before the filters that build large results in one step (args without the environment/context)."""
    if name in ("center", "indent", "batch", "slice", "wordwrap", "truncate"):
        numbers = [*args[1:], *kwargs.values()]
        count = kwargs.get("linecount", kwargs.get("slices", args[1] if len(args) > 1 else None))
        items = name in ("batch", "slice") and isinstance(count, int) and count > MAX_ITEMS
        if items or any(_too_large(v) for v in numbers):
            raise TemplateSandboxViolation(f"{name} with a size past the caps")
        width = kwargs.get("width", args[1] if len(args) > 1 else None)
        text = args[0] if args and isinstance(args[0], str) else ""
        if (
            name == "indent"
            and isinstance(width, str)
            and len(text) + (text.count("\n") + 1) * len(width) > MAX_OUTPUT_CHARS
        ):
            raise TemplateSandboxViolation(f"indent result larger than {MAX_OUTPUT_CHARS} characters")
    elif name == "replace" and len(args) >= 3:
        _estimate_replace(*args[:4])
    elif name == "join" and args:
        _estimate_join(args[0], args[1] if len(args) > 1 else kwargs.get("d", ""))  # lists only: never consumed
    elif name == "format" and args:
        _check_format(args[0], [*args[1:], *kwargs.values()])


def _limited_filter(name: str, func: Any) -> Any:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # environment, eval context or context

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        _filter_check(name, args[skip:], kwargs)
        return func(*args, **kwargs)

    return wrapper


def _lipsum(func: Any) -> Any:
    def wrapper(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> Any:
        if any(not isinstance(v, int) or v > MAX_RANGE for v in (n, min, max)) or n * max > MAX_ITEMS:
            raise TemplateSandboxViolation("lipsum larger than the caps")
        return func(n, html, min, max)

    return wrapper


class _Generator(CodeGenerator):
    """Route `~` concatenation through the environment so that its size and time are checked."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class ChatTemplateEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size and time limits (see the module docstring)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        if operator == "%":
            _check_format(left, right)
            return left % right
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise TemplateSandboxViolation("exponent larger than 64")
            return left**right
        if operator == "*":
            count = right if isinstance(right, int) else left if isinstance(left, int) else 0
            if max(_size(left), _size(right)) * max(count, 0) > MAX_ITEMS:
                raise TemplateSandboxViolation(f"repetition larger than {MAX_ITEMS} items")
            return left * right
        if _size(left) + _size(right) > MAX_OUTPUT_CHARS:
            raise TemplateSandboxViolation(f"concatenation larger than {MAX_OUTPUT_CHARS} characters")
        return left + right

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        receiver = getattr(__obj, "__self__", None)
        if isinstance(receiver, str):
            method = getattr(__obj, "__name__", "")
            if method in _WIDTH_METHODS and any(_too_large(v) for v in [*args, *kwargs.values()]):
                raise TemplateSandboxViolation(f"str.{method} with a width past the output cap")
            if method == "replace" and len(args) >= 2:
                _estimate_replace(receiver, *args[:3])
            elif method == "join" and args:
                _estimate_join(args[0], receiver)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """jinja2 hands `str.format`/`format_map` over as a wrapper when the attribute is read (not in `call`):
        the wrapper checks the format string's widths first."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = list(args[0].values()) if args and isinstance(args[0], dict) else []
            _check_format(fmt, [*args, *kwargs.values(), *mapping])
            return wrapped(*args, **kwargs)

        return checked

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        _check_deadline()
        strings = [p if isinstance(p, str) else str(p) for p in parts]
        if sum(len(s) for s in strings) > MAX_OUTPUT_CHARS:
            raise TemplateSandboxViolation(f"concatenation larger than {MAX_OUTPUT_CHARS} characters")
        return "".join(strings)


@lru_cache(maxsize=1)
def environment() -> ChatTemplateEnvironment:
    # The same options as Hugging Face's `apply_chat_template`, so templates render alike.
    env = ChatTemplateEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise_exception
    env.globals["range"] = _range
    env.globals["lipsum"] = _lipsum(env.globals["lipsum"])
    for name in ("center", "indent", "batch", "slice", "wordwrap", "truncate", "replace", "join", "format"):
        env.filters[name] = _limited_filter(name, env.filters[name])
    return env


@lru_cache(maxsize=32)
def _compile(source: str) -> Template:
    try:
        return environment().from_string(source)
    except TemplateError as exc:
        raise TemplateRenderError(f"chat template does not compile: {exc}") from None


def render(source: str, **context: Any) -> str:
    """Render `source` with `context` in the immutable sandbox; raise `TemplateRenderError` on failure.

    A sandbox violation or an exceeded limit raises `TemplateSandboxViolation` (a `TemplateRenderError`).
    """
    template = _compile(source)
    token = _DEADLINE.set(time.monotonic() + TIMEOUT_S)
    out: list[str] = []
    total = 0
    try:
        for chunk in template.generate(**context):
            total += len(chunk)
            if total > MAX_OUTPUT_CHARS:
                raise TemplateSandboxViolation(f"chat template output exceeds {MAX_OUTPUT_CHARS} characters")
            out.append(chunk)
    except SecurityError as exc:
        raise TemplateSandboxViolation(f"chat template broke the sandbox rules: {exc}") from None
    except TemplateError as exc:
        raise TemplateRenderError(f"chat template failed: {exc}") from None
    except (TypeError, ValueError, OverflowError, ArithmeticError, LookupError, AttributeError) as exc:
        if isinstance(exc, TemplateRenderError):
            raise
        raise TemplateRenderError(f"chat template failed: {type(exc).__name__}: {exc}") from None
    finally:
        _DEADLINE.reset(token)
    return "".join(out)


def find_ssti(source: str) -> list[TemplateIssue]:
    """Server-side template injection constructs in `source`, found on its AST without rendering
    (`template_ssti.analyse`: literal and computed dunder access, dangerous names and strings).
    Raises `TemplateRenderError` if the template does not parse."""
    try:
        tree = environment().parse(source)
    except TemplateError as exc:
        raise TemplateRenderError(f"chat template does not parse: {exc}") from None
    return analyse(tree)
