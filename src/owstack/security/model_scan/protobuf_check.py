"""Protobuf model files, read at the wire-format level (no onnx or tensorflow dependency).

- Every file: the top-level fields must parse (tags, varints and lengths inside the file), else the
  file is unscannable; a SentencePiece `tokenizer.model` is such a protobuf and nothing more.
- ONNX: a tensor's `external_data` `location` is a path the loader opens relative to the model; an
  absolute path or one with `..` reads any file of the machine into a tensor (CVE-2022-25882,
  CVE-2024-27318, CVE-2024-5187).
- ONNX, walked message by message (ModelProto -> graphs, functions, training graphs -> nodes -> attribute
  graphs and tensors -> external_data entries): every `location`, whatever the order of its key and value
  fields (a byte pattern for "key, then value" missed an entry written value first), and every node whose
  operator domain is neither ONNX's nor onnxruntime's own nor a function the model defines: such a model runs
  only with a custom-operator library registered from elsewhere (native code; onnxruntime
  `SessionOptions.register_custom_ops_library`), the model names the code it needs without carrying it.
- TensorFlow graphs (`saved_model.pb`, frozen `.pb`), walked by the schema (SavedModel -> MetaGraphDef ->
  GraphDef -> NodeDef, and the function library's nodes): `PyFunc`/`EagerPyFunc` call Python (critical);
  ops that touch the host whatever their inputs (`ReadFile`, `WriteFile`, `MatchingFiles`, `ImmutableConst`,
  which maps the file its `memory_region_name` names, `WholeFileReader`, `DatasetToTFRecord`, summary
  writers, ...) are high; saver, table and dataset ops (`SaveV2`, `RestoreV2`, `MergeV2Checkpoints`,
  `InitializeTableFromTextFile`, `TFRecordDataset`, ...), which every SavedModel's saver uses, are high when
  a path input is a constant that is absolute, climbs with `..` or is a URL; any op whose path attribute
  (`PrintV2` `output_stream: file://...`, `debug_urls`, `descriptor_source`) names a file is high, and so is
  a SavedModel `asset_file_def` file name that is absolute or climbs out (the loader joins it to
  `assets/`, and an absolute name replaces the folder: a vocabulary table then reads any file).
"""

from __future__ import annotations

import re

ONNX_LOCATION = re.compile(rb"\x0a\x08location\x12")
#: NodeDef.op is field 2 (tag 0x12) followed by the op name's length
TF_FILE_OPS = ("ReadFile", "WriteFile")
_MAX_FIELDS = 10_000_000


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def wire_problem(data: bytes | memoryview) -> str | None:
    """Why `data` is not a well-formed protobuf message (top level), or None."""
    pos = fields = 0
    try:
        while pos < len(data):
            fields += 1
            if fields > _MAX_FIELDS:
                return f"more than {_MAX_FIELDS} fields"
            key, pos = _varint(data, pos)
            wire = key & 7
            if key >> 3 == 0:
                return f"field number 0 at byte {pos}"
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 2:
                length, pos = _varint(data, pos)
                pos += length
            elif wire == 5:
                pos += 4
            else:
                return f"wire type {wire} at byte {pos}"
    except ValueError as exc:
        return f"{exc} at byte {pos}"
    return None if pos == len(data) else "last field runs past the end"


def onnx_locations(data: bytes, walk: OnnxWalk | None = None) -> list[str]:
    """The external-data locations an ONNX model names (the structured walk, and the byte pattern for
    entries the walk cannot reach)."""
    out = list((walk or onnx_walk(data)).locations)
    for match in ONNX_LOCATION.finditer(data):
        try:
            length, start = _varint(data, match.end())
        except ValueError:
            continue
        out.append(data[start : start + length].decode("utf-8", "replace"))
    return list(dict.fromkeys(out))


#: operator domains onnx and onnxruntime implement themselves (onnx/defs, onnxruntime contrib ops)
STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.ms.internal.nhwc",
        "com.microsoft.dml",
    }
)
# message kind -> {field number: message kind} of the ONNX schema (onnx/onnx.proto3), the fields that hold messages
_ONNX_MESSAGES: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
}
_MAX_MESSAGES = 2_000_000
_MAX_NESTING = 64


class OnnxWalk:
    def __init__(self) -> None:
        self.locations: list[str] = []
        self.ops: set[tuple[str, str]] = set()  # (domain, op_type) of every node
        self.functions: set[tuple[str, str]] = set()  # (domain, name) the model defines
        self.messages = 0
        self.truncated = False  # more messages than the walk reads: the rest is not analysed


def _fields(data: memoryview) -> list[tuple[int, int, memoryview | int]]:
    """(field number, wire type, payload) of one message; raises ValueError when it does not parse."""
    out: list[tuple[int, int, memoryview | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("length runs past the message")
            out.append((number, wire, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")
    if pos != len(data):
        raise ValueError("last field runs past the message")
    return out


def _text(value: memoryview | int) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, memoryview) else ""


def onnx_walk(data: bytes) -> OnnxWalk:
    """Locations, node operators and local functions of an ONNX model (messages that do not parse are skipped:
    `wire_problem` judges the file)."""
    walk = OnnxWalk()
    todo: list[tuple[str, memoryview, int]] = [("model", memoryview(data), 0)]
    while todo and walk.messages < _MAX_MESSAGES:
        kind, body, depth = todo.pop()
        walk.messages += 1
        try:
            fields = _fields(body)
        except ValueError:
            continue
        strings = {n: _text(v) for n, w, v in fields if w == 2 and n in (1, 2, 4, 7, 10)}
        if kind == "entry" and strings.get(1) == "location":
            walk.locations += [_text(v) for n, w, v in fields if n == 2 and w == 2]
        elif kind == "node":
            walk.ops.add((strings.get(7, ""), strings.get(4, "")))
        elif kind == "function":
            walk.functions.add((strings.get(10, ""), strings.get(1, "")))
        if depth >= _MAX_NESTING:
            continue
        children = _ONNX_MESSAGES.get(kind, {})
        for number, wire, value in fields:
            if wire == 2 and number in children and isinstance(value, memoryview):
                todo.append((children[number], value, depth + 1))
    walk.truncated = bool(todo)
    return walk


def onnx_custom_ops(data: bytes, walk: OnnxWalk | None = None) -> list[str]:
    """`domain::op` of every node whose operator neither onnx, onnxruntime nor the model itself defines."""
    walk = walk or onnx_walk(data)
    custom = {
        f"{domain}::{op}"
        for domain, op in walk.ops
        if domain not in STANDARD_DOMAINS and (domain, op) not in walk.functions
    }
    return sorted(custom)


def escapes(location: str) -> bool:
    """Whether a relative path leaves the model's folder (absolute, drive letter, `..`, URL)."""
    parts = re.split(r"[\\/]", location)
    return (
        location.startswith(("/", "\\", "~"))
        or bool(re.match(r"^[A-Za-z]:", location))
        or ".." in parts
        or "://" in location
    )


def tf_file_ops(data: bytes) -> list[str]:
    return [op for op in TF_FILE_OPS if b"\x12" + bytes([len(op)]) + op.encode() in data]


# TensorFlow graphs, walked by the schema (tensorflow/core/framework/graph.proto, node_def.proto,
# function.proto, attr_value.proto, tensor.proto; tensorflow/core/protobuf/saved_model.proto, meta_graph.proto)
_TF_MESSAGES: dict[str, dict[int, str]] = {
    "saved_model": {2: "meta_graph"},
    "meta_graph": {2: "graph", 6: "asset"},
    "graph": {1: "node", 2: "library"},
    "library": {1: "function"},
    "function": {3: "node"},
}
#: ops that call back into the Python process that registered them (tf.py_function, tf.numpy_function)
TF_PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: ops that read, write, list or map files of the host whatever their inputs
TF_HOST_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset",
        "ImmutableConst",
        "WholeFileReader",
        "WholeFileReaderV2",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "SaveDataset",
        "SaveDatasetV2",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "DebugIdentityV2",
    }
)
#: ops a model's own saver or asset loader uses: reported when a path input is a constant that leaves the folder
TF_PATH_OPS = frozenset(
    {
        "Save",
        "SaveV2",
        "SaveSlices",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "MergeV2Checkpoints",
        "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "TextLineDataset",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "LoadDataset",
        "SnapshotDataset",
        "SnapshotDatasetV2",
        "CSVDataset",
        "CSVDatasetV2",
        "ExperimentalCSVDataset",
        "LMDBDataset",
        "ExperimentalLMDBDataset",
        "SqlDataset",
        "ExperimentalSqlDataset",
        "LoadAndRemapMatrix",
        "GenerateVocabRemapping",
    }
)
#: attributes whose string value is a destination or a path (PrintV2 `output_stream`, ImmutableConst
#: `memory_region_name`, DebugIdentity `debug_urls`, DecodeProtoV2 `descriptor_source`)
TF_PATH_ATTRS = frozenset({"output_stream", "memory_region_name", "debug_urls", "descriptor_source", "file_path"})


class TfNode:
    def __init__(self, name: str, op: str) -> None:
        self.name = name
        self.op = op
        self.inputs: list[str] = []
        self.strings: dict[str, list[str]] = {}  # attribute -> its string values (s, list.s, tensor string_val)


def _tf_attr_strings(body: memoryview) -> list[str]:
    """The strings of an AttrValue: `s` (2), `list` (1) -> `s` (2), `tensor` (8) -> `string_val` (8)."""
    out: list[str] = []
    for number, wire, value in _fields(body):
        if wire != 2 or not isinstance(value, memoryview):
            continue
        if number == 2:
            out.append(_text(value))
        elif number in (1, 8):
            out += [_text(v) for n, w, v in _fields(value) if w == 2 and n in (2, 8) and isinstance(v, memoryview)]
    return out


def _tf_node(body: memoryview) -> TfNode | None:
    fields = _fields(body)
    strings = {n: _text(v) for n, w, v in fields if w == 2 and n in (1, 2)}
    if not strings.get(2):
        return None
    node = TfNode(strings.get(1, ""), strings[2])
    node.inputs = [_text(v) for n, w, v in fields if n == 3 and w == 2]
    for number, wire, value in fields:
        if number != 5 or wire != 2 or not isinstance(value, memoryview):
            continue
        try:
            entry = {n: v for n, w, v in _fields(value) if w == 2}
            key, attr = entry.get(1), entry.get(2)
            if isinstance(key, memoryview) and isinstance(attr, memoryview):
                node.strings.setdefault(_text(key), []).extend(_tf_attr_strings(attr))
        except ValueError:
            continue
    return node


def tf_nodes(data: bytes, assets: list[str] | None = None) -> list[TfNode]:
    """Every NodeDef of a SavedModel or a frozen GraphDef (and of their function libraries); the file names of
    a SavedModel's `asset_file_def` entries are added to `assets`."""
    out: list[TfNode] = []
    todo: list[tuple[str, memoryview, int]] = [("saved_model", memoryview(data), 0), ("graph", memoryview(data), 0)]
    messages = 0
    while todo and messages < _MAX_MESSAGES:
        kind, body, depth = todo.pop()
        messages += 1
        try:
            if kind == "node":
                node = _tf_node(body)
                if node is not None:
                    out.append(node)
                continue
            fields = _fields(body)
        except ValueError:
            continue
        if kind == "asset" and assets is not None:  # AssetFileDef: tensor_info (1), filename (2)
            assets += [_text(v) for n, w, v in fields if n == 2 and w == 2]
            continue
        children = _TF_MESSAGES.get(kind, {})
        for number, wire, value in fields:
            if wire == 2 and number in children and isinstance(value, memoryview) and depth < _MAX_NESTING:
                todo.append((children[number], value, depth + 1))
    return out


def _standard_stream(value: str) -> bool:
    """PrintV2's own streams and DecodeProtoV2's in-process descriptor sources: no file."""
    return value in ("stderr", "stdout") or value.startswith(("log(", "local://", "bytes://"))


def _outside(value: str) -> bool:
    return escapes(value) or value.startswith("file:") or "://" in value


def _const_ancestors(node: TfNode, by_name: dict[str, TfNode], limit: int = 256) -> list[str]:
    """The names of the nodes `node` reads from, transitively (a path built by StringJoin, Identity, ... of
    constants), at most `limit` of them."""
    seen: set[str] = set()
    todo = list(node.inputs)
    while todo and len(seen) < limit:
        name = todo.pop().lstrip("^").split(":")[0]
        if name in seen:
            continue
        seen.add(name)
        parent = by_name.get(name)
        if parent is not None:
            todo.extend(parent.inputs)
    return sorted(seen)


def tf_host_ops(data: bytes) -> list[tuple[str, str]]:
    """(severity, description) of the nodes of a TensorFlow graph that reach the host when the graph runs."""
    assets: list[str] = []
    nodes = tf_nodes(data, assets)
    consts = {n.name: n.strings.get("value", []) for n in nodes if n.op == "Const"}
    by_name = {n.name: n for n in nodes}
    out: list[tuple[str, str]] = []
    for node in nodes:
        paths = [s for key in TF_PATH_ATTRS for s in node.strings.get(key, []) if s and not _standard_stream(s)]
        if node.op in TF_PYTHON_OPS:
            out.append(("critical", f"node {node.name!r} runs the {node.op} op (a Python callback)"))
        elif node.op in TF_HOST_OPS:
            where = f" on {paths[0]!r}" if paths else ""
            out.append(("high", f"node {node.name!r} runs the {node.op} op{where}"))
        elif node.op in TF_PATH_OPS:
            named = [v for c in _const_ancestors(node, by_name) for v in consts.get(c, []) if _outside(v)]
            if named:
                out.append(("high", f"node {node.name!r} runs the {node.op} op on the constant path {named[0]!r}"))
        elif paths:
            out.append(("high", f"node {node.name!r} runs the {node.op} op writing to {paths[0]!r}"))
    for asset in dict.fromkeys(assets):
        if _outside(asset):  # the loader opens os.path.join(export_dir, "assets", filename): an absolute name wins
            out.append(("high", f"asset file {asset!r} lies outside the SavedModel's assets folder"))
    for op in tf_file_ops(data):  # a node the walk could not place (a truncated or reordered message)
        if not any(node.op == op for node in nodes):
            out.append(("high", f"a node runs the {op} op"))
    return out
