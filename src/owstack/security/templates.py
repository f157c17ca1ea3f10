"""Render chat templates (Jinja code shipped inside model files) only in jinja2's immutable sandbox.

Chat templates are code: CVE-2024-34359 (llama-cpp-python) and CVE-2026-5760 (SGLang) were server-side
template injection through them. Every template owstack renders goes through `render`, which adds to the
sandbox (no `_`-attributes, no mutation of lists and dicts, calls checked) limits against resource abuse:
`range` capped at 10,000 items, repetition (`*`), power (`**`), `+` and `~` results capped, output capped at
4 MiB, and the render stopped after 2 s (checked on every loop step, call and concatenation).
What it cannot stop: a filter that builds a huge string in one step (e.g. `replace` doubling a string in a
loop) can still use memory up to the caps checked between steps; scan and pin templates (`owstack scan
--models`) rather than render unknown ones.

`find_ssti(source)` reports server-side-template-injection constructs without rendering anything.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
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
    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
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
        return super().call(__context, __obj, *args, **kwargs)

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
