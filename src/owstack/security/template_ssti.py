"""Server-side template injection in chat templates, found on the Jinja AST (nothing is rendered).

Literal payloads (`x.__class__`) are the easy case. The attacks that beat literal checks build the
attribute name: `ns[u ~ 'init' ~ u]` with `{% set u = '_' ~ '_' %}`, `x|attr('%c%c'|format(95, 95) ~
'class' ...)`, `'ssalc'|reverse`, `['_','_']|join`, or a key taken from the conversation itself
(`obj[messages[0].content]`), gated so that a sample render never reaches it. In Jinja an attribute name
can only be computed through an item access (`obj[key]`, which falls back to `getattr`) or through a
filter or test that takes an attribute name (`attr`, `map(attribute=)`, `selectattr`, `sort(attribute=)`,
`groupby`, `sum`, `unique`, `min`, `max`). So every such access is checked: its key must be provably a
number or a constant name that is not private. A key built from strings (concatenation, `+`, `%`,
`format`, `join`, `replace`, `reverse`, slicing, any filter or method call) is `critical`; a key that
comes from the request's data is `medium`; a private constant is `critical`. Variables are followed
through `set`, `for`, `with`, macro arguments and namespace attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jinja2 import nodes

Kind = Literal["safe", "number", "data", "computed", "private"]
_NUMERIC_FILTERS = frozenset({"length", "count", "int", "abs", "round", "float", "wordcount"})
_NUMERIC_LOOP = frozenset({"index", "index0", "revindex", "revindex0", "length", "depth", "depth0"})
# filter -> the position of its attribute argument among the filter's own arguments (None: keyword only), as
# jinja2 3.1 declares them (filters.py: `sum(iterable, attribute, start)`, `join(value, d, attribute)`, ...)
_ATTR_FILTERS: dict[str, int | None] = {
    "attr": 0,
    "map": None,
    "selectattr": 0,
    "rejectattr": 0,
    "sort": 2,
    "groupby": 0,
    "sum": 0,
    "unique": 1,
    "min": 1,
    "max": 1,
    "join": 1,
    "dictsort": None,
}
# `map(name, *args)` applies the filter called `name`: `map('attr', key)` is `|attr(key)`
_FILTER_BY_NAME = frozenset({"map"})
_FORMAT_METHODS = frozenset({"format", "format_map"})
_DANGEROUS_NAMES = frozenset(
    {
        "cycler",
        "joiner",
        "lipsum",
        "self",
        "config",
        "request",
        "url_for",
        "get_flashed_messages",
        "os",
        "subprocess",
        "__builtins__",
        "builtins",
        "importlib",
        "sys",
        "eval",
        "exec",
        "open",
        "getattr",
        "globals",
    }
)
_DANGEROUS_WORDS = (
    "__",
    "popen",
    "subprocess",
    "system(",
    "import",
    "builtins",
    "globals",
    "subclasses",
    "mro",
    "eval(",
    "exec(",
    "getattr",
    "/bin/",
    "/etc/",
    "curl ",
    "wget ",
)
_RANK: dict[Kind, int] = {"safe": 0, "number": 0, "data": 1, "computed": 2, "private": 3}


@dataclass(frozen=True, slots=True)
class TemplateIssue:
    """A server-side template injection construct found by `find_ssti`."""

    line: int
    construct: str
    message: str
    severity: str = "critical"


def _worst(kinds: list[Kind]) -> Kind:
    return max(kinds, key=lambda k: _RANK[k]) if kinds else "safe"


@dataclass(frozen=True, slots=True)
class _Binding:
    how: Literal["value", "element", "text", "argument"]
    node: nodes.Node | None


class _Bindings:
    """What each variable name may hold: every expression assigned to it anywhere in the template."""

    def __init__(self, tree: nodes.Template) -> None:
        self.values: dict[str, list[_Binding]] = {}
        for node in tree.find_all((nodes.Assign, nodes.AssignBlock, nodes.For, nodes.With, nodes.Macro)):
            self._collect(node)

    def _bind(self, target: nodes.Node, binding: _Binding) -> None:
        if isinstance(target, nodes.Name):
            self.values.setdefault(target.name, []).append(binding)
        elif isinstance(target, nodes.NSRef):
            self.values.setdefault(f"{target.name}.{target.attr}", []).append(binding)
        elif isinstance(target, nodes.Tuple):
            for item in target.items:  # unpacking: each name may hold any element
                self._bind(item, _Binding("element", binding.node) if binding.how == "value" else binding)

    def _collect(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Assign):
            self._bind(node.target, _Binding("value", node.node))
        elif isinstance(node, nodes.AssignBlock):
            self._bind(node.target, _Binding("text", None))
        elif isinstance(node, nodes.For):
            self._bind(node.target, _Binding("element", node.iter))
        elif isinstance(node, nodes.With):
            for target, value in zip(node.targets, node.values, strict=False):
                self._bind(target, _Binding("value", value))
        elif isinstance(node, nodes.Macro):
            for arg in node.args:
                self._bind(arg, _Binding("argument", None))


class _Classifier:
    def __init__(self, bindings: _Bindings) -> None:
        self.bindings = bindings
        self.visiting: set[str] = set()

    def kind(self, node: nodes.Node | None) -> Kind:
        """What an expression used as an attribute name or key may evaluate to."""
        if node is None:
            return "data"
        if isinstance(node, nodes.Const):
            return self._const(node.value)
        if isinstance(node, nodes.Name):
            return self._name(node.name)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            if node.node.name == "loop" and node.attr in _NUMERIC_LOOP:
                return "number"
            if f"{node.node.name}.{node.attr}" in self.bindings.values:
                return self._name(f"{node.node.name}.{node.attr}")
        if isinstance(node, nodes.Neg | nodes.Pos | nodes.Sub | nodes.Div | nodes.FloorDiv | nodes.Pow):
            return "number"
        if isinstance(node, nodes.Add):
            kinds = [self.kind(node.left), self.kind(node.right)]
            return "number" if all(k == "number" for k in kinds) else _worst([*kinds, "computed"])
        if isinstance(node, nodes.Filter) and node.name in _NUMERIC_FILTERS:
            return "number"
        if isinstance(node, nodes.CondExpr):
            return _worst([self.kind(node.expr1), self.kind(node.expr2)])
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            return "data"  # a value read out of the request (messages, tools, ...)
        # Concat, Mod, Mul, Filter, Call, Slice, List, ...: a string built by the template
        return "computed"

    @staticmethod
    def _const(value: object) -> Kind:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "number"
        if isinstance(value, str) and any(part.startswith("_") for part in value.split(".")):
            return "private"  # an attribute argument is a dotted path: `map(attribute='content._x')`
        return "safe"

    def _name(self, name: str) -> Kind:
        if name not in self.bindings.values:
            return "data"  # a context variable: messages, tools, bos_token, ...
        if name in self.visiting:
            return "computed"
        self.visiting.add(name)
        try:
            return _worst([self._binding(b) for b in self.bindings.values[name]])
        finally:
            self.visiting.discard(name)

    def _binding(self, binding: _Binding) -> Kind:
        if binding.how == "value":
            return self.kind(binding.node)
        if binding.how == "text":
            return "computed"
        if binding.how == "argument" or binding.node is None:
            return "data"
        iterable = binding.node  # a loop target or an unpacked element
        if isinstance(iterable, nodes.List | nodes.Tuple):
            return _worst([self.kind(i) for i in iterable.items])
        if isinstance(iterable, nodes.Call) and _is_range(iterable):
            return "number"
        if isinstance(iterable, nodes.Filter | nodes.Call | nodes.Concat | nodes.Add | nodes.Mod):
            strings = [c for c in iterable.find_all(nodes.Const) if isinstance(c.value, str)]
            return "computed" if strings else "data"  # e.g. '_;_'.split(';') versus messages|reverse
        return "data"


def _is_range(call: nodes.Call) -> bool:
    return isinstance(call.node, nodes.Name) and call.node.name == "range"


def _attribute_args(node: nodes.Filter | nodes.Test) -> list[nodes.Node]:
    position = _ATTR_FILTERS.get(node.name, -1)
    out: list[nodes.Node] = [kw.value for kw in node.kwargs if kw.key == "attribute"]
    if position is not None and position >= 0 and len(node.args) > position:
        out.append(node.args[position])
    return out


def _verdict(kind: Kind, construct: str, what: str) -> tuple[str, str, str] | None:
    if kind == "private":
        return construct, f"{what} names a private/dunder attribute (sandbox escape pattern)", "critical"
    if kind == "computed":
        return construct, f"{what} is built from strings at render time and can spell a dunder name", "critical"
    if kind == "data":
        return construct, f"{what} comes from the request's data: a message can name a dunder attribute", "medium"
    return None


def _filter_by_name(classify: _Classifier, node: nodes.Filter) -> tuple[str, str, str] | None:
    """`map('attr', key)` reads attribute `key`; a filter name that is not a constant may be 'attr'."""
    name = node.args[0]
    if not isinstance(name, nodes.Const):
        why = "the filter applied is named at render time: it can be attr"
        return f"|{node.name}(computed filter)", why, "critical"
    if name.value != "attr":
        return None
    if len(node.args) < 2:
        return f"|{node.name}('attr')", "the attr filter reads attributes by a name given at render time", "critical"
    kind = classify.kind(node.args[1])
    found = _verdict(kind, f"|{node.name}('attr')", f"attribute name of |{node.name}('attr')")
    return found or (f"|{node.name}('attr')", "the attr filter reads attributes by name", "critical")


def _format_call(classify: _Classifier, method: nodes.Getattr) -> tuple[str, str, str] | None:
    """`'{0.x}'.format(obj)` reads attribute x of obj: a format string built at render time (or taken from the
    request) can spell a dunder path, and a constant one is checked field by field."""
    import string

    receiver = method.node
    construct = f".{method.attr}()"
    if isinstance(receiver, nodes.Const):
        if not isinstance(receiver.value, str):
            return None
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(receiver.value) if f]
        except ValueError:
            return None
        for field_name in fields:
            steps = field_name.replace("[", ".").replace("]", "").split(".")[1:]
            if any(step.startswith("_") for step in steps):
                return construct, "format string reads a private/dunder attribute (sandbox escape pattern)", "critical"
        return None
    return _verdict(classify.kind(receiver), construct, "format string")


def analyse(tree: nodes.Template) -> list[TemplateIssue]:
    """Every SSTI construct in a parsed template (see the module docstring)."""
    classify = _Classifier(_Bindings(tree))
    issues: list[TemplateIssue] = []

    def add(node: nodes.Node, found: tuple[str, str, str] | None) -> None:
        if found is not None:
            issues.append(TemplateIssue(node.lineno, *found))

    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Test, nodes.Const)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            add(node, (f".{node.attr}", "access to a private/dunder attribute (sandbox escape pattern)", "critical"))
        elif isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
            kind = classify.kind(node.arg)
            construct = f"[{node.arg.value!r}]" if isinstance(node.arg, nodes.Const) else "[computed key]"
            add(node, _verdict(kind, construct, "item key"))
        elif isinstance(node, nodes.Name) and node.name in _DANGEROUS_NAMES and node.ctx == "load":
            add(node, (node.name, "a name that leads to Python internals in known SSTI payloads", "critical"))
        elif isinstance(node, nodes.Filter | nodes.Test) and node.name in _ATTR_FILTERS:
            if node.name == "attr":
                add(node, ("|attr", "the attr filter reads attributes by a name given at render time", "critical"))
            for arg in _attribute_args(node):
                add(node, _verdict(classify.kind(arg), f"|{node.name}", f"attribute name of |{node.name}"))
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            lowered = node.value.lower()
            for word in _DANGEROUS_WORDS:
                if word in lowered:
                    add(node, (repr(node.value[:40]), f"string constant contains {word.strip()!r}", "critical"))
                    break
    for node in tree.find_all(nodes.Filter):
        if node.name in _FILTER_BY_NAME and node.args and not any(kw.key == "attribute" for kw in node.kwargs):
            add(node, _filter_by_name(classify, node))
    for call in tree.find_all(nodes.Call):
        for kw in call.kwargs:
            if kw.key.startswith("_"):
                add(call, (f"{kw.key}=", "keyword argument with a private name", "critical"))
        if isinstance(call.node, nodes.Getattr) and call.node.attr in _FORMAT_METHODS:
            add(call, _format_call(classify, call.node))
    return sorted(set(issues), key=lambda i: (i.line, i.construct))
