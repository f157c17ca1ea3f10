"""Second red-team pass on `scan --models` (2026-12-03). Each attack is written from the public description
of its class (cited beside it), run in the real loader where the loader is installed (pickle.loads, torch,
pandas) with a harmless payload (`os.getcwd`, or a file created in the test's tmp folder), and shown to be
missed or under-rated by the scanner before this pass; each has a benign twin that must stay below high."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
from _model_files import GETCWD, ORDER, keras_archive, pb, sg, su, tar_of, verdicts

# -- protocols 0 and 1: every plain object is `copyreg._reconstructor(cls, builtins.object, None)` ---------


@pytest.mark.parametrize("protocol", [0, 1])
def test_protocol_0_and_1_objects_are_judged_by_their_class(tmp_path: Path, protocol: int) -> None:
    """`object.__reduce_ex__(0 or 1)` is `copyreg._reduce_ex`, which names `builtins.object` as the base of
    every plain object (CPython Lib/copyreg.py): a torch module pickled so was critical for that name alone."""
    import torch

    data = pickle.dumps(torch.nn.ReLU(), protocol=protocol)
    assert b"_reconstructor" in data and b"object" in data
    assert isinstance(pickle.loads(data), torch.nn.ReLU)
    (tmp_path / "relu.pkl").write_bytes(data)
    assert verdicts(tmp_path)["relu.pkl"] == "medium"  # the torch.nn class (reviewed), as with protocol 2


def test_protocol_0_reconstructor_of_a_dangerous_class(tmp_path: Path) -> None:
    data = b"ccopy_reg\n_reconstructor\n(csubprocess\nPopen\nc__builtin__\nobject\nNtR."
    (tmp_path / "evil.pkl").write_bytes(data)
    assert verdicts(tmp_path)["evil.pkl"] == "critical"


# -- import gadgets and file-touching names inside reviewed or allowed packages ----------------------------

GADGETS = {
    # numpy/core/__init__.py keeps `_ufunc_reconstruct(module, name)` = getattr(__import__(module), name)
    "ufunc_reconstruct": sg("numpy.core", "_ufunc_reconstruct") + su("os") + su("getcwd") + b"\x86R)R.",
    # torch/_utils.py `_import_dotted_name("os.getcwd")`
    "import_dotted_name": sg("torch._utils", "_import_dotted_name") + su("os.getcwd") + b"\x85R)R.",
}


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_import_gadgets_of_reviewed_packages(tmp_path: Path, gadget: str) -> None:
    data = b"\x80\x04" + GADGETS[gadget]
    assert pickle.loads(data) == os.getcwd()  # the payload's import never appears as a GLOBAL
    (tmp_path / "model.pkl").write_bytes(data)
    assert verdicts(tmp_path)["model.pkl"] == "critical"  # was high


def test_constructor_that_writes_a_file(tmp_path: Path) -> None:
    """`torch._C.PyTorchFileWriter(path)` opens `path` for writing when it is built: a CamelCase class of a
    reviewed package, which was medium."""
    pytest.importorskip("torch")
    target = tmp_path / "written"
    data = b"\x80\x04" + sg("torch._C", "PyTorchFileWriter") + su(str(target)) + b"\x85R."
    pickle.loads(data)
    assert target.exists()
    target.unlink()
    (tmp_path / "model.pkl").write_bytes(data)
    assert verdicts(tmp_path)["model.pkl"] == "critical"


def test_torch_save_called_by_a_pickle_writes_a_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    target = tmp_path / "written.pt"
    data = b"\x80\x04" + sg("torch", "save") + su("x") + su(str(target)) + b"\x86R."
    pickle.loads(data)
    assert target.exists()
    target.unlink()
    (tmp_path / "model.pkl").write_bytes(data)
    assert verdicts(tmp_path)["model.pkl"] == "critical"  # was high


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch", "UntypedStorage.from_file"),  # maps any file (shared=True writes it)
        ("torch.storage", "TypedStorage.from_file"),
        ("numpy.lib.format", "open_memmap"),  # creates or overwrites a .npy file
        ("torch.utils.collect_env", "run"),  # runs a shell command
        ("transformers", "AutoModel.from_pretrained"),  # trust_remote_code=True runs a repository's code
        ("pandas.io.parsers", "read_csv"),  # reads any file or URL
        ("torch", "ops.aten.save"),
        ("torch._ops", "ops.aten.save"),
    ],
)
def test_loader_writer_and_runner_names_are_critical(tmp_path: Path, module: str, name: str) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04" + sg(module, name) + su("/etc/passwd") + b"\x85R.")
    assert verdicts(tmp_path)["model.pkl"] == "critical"  # each was high


def test_reviewed_class_in_a_risky_module_is_high(tmp_path: Path) -> None:
    """sklearn.utils._testing.TempMemmap, torchvision.datasets.MNIST(download=True): CamelCase classes of a
    reviewed package whose module says they touch files or the network are not medium."""
    (tmp_path / "a.pkl").write_bytes(b"\x80\x04" + sg("sklearn.utils._testing", "TempMemmap") + b")R.")
    (tmp_path / "b.pkl").write_bytes(b"\x80\x04" + sg("transformers.utils.hub", "PushToHubMixin") + b")R.")
    (tmp_path / "ok.pkl").write_bytes(b"\x80\x04" + sg("sklearn.linear_model._base", "LinearRegression") + b")R.")
    found = verdicts(tmp_path)
    assert found["a.pkl"] == found["b.pkl"] == "high"
    assert found["ok.pkl"] == "medium"


# -- compression and archives as pandas.read_pickle opens them -------------------------------------------


def zstd_frame(payload: bytes) -> bytes:
    """A Zstandard frame (RFC 8878) with one raw (stored) block, written by hand: zstandard is not installed."""
    header = b"\x28\xb5\x2f\xfd" + b"\x00" + b"\x58"  # magic, no checksum or content size, window 2**21
    return header + (1 | len(payload) << 3).to_bytes(3, "little") + payload  # last block, raw


@pytest.mark.parametrize("name", ["model.pkl.zst", "model.pkl.zstd", "model.zst", "no_suffix"])
def test_zstd_pickle_is_never_clean(tmp_path: Path, name: str) -> None:
    """pandas.read_pickle infers zstd from `.zst` (pandas io/common.py `extension_to_compression`); the
    scanner cannot decompress it, so the file is unscannable (high), not absent from the folder scan."""
    (tmp_path / name).write_bytes(zstd_frame(GETCWD))
    assert verdicts(tmp_path)[name] == "high"  # was not scanned at all


def test_zip_whose_only_member_is_an_unnamed_protocol_0_pickle(tmp_path: Path) -> None:
    """pandas.read_pickle("x.zip") unpickles the archive's only member whatever its name; a protocol 0
    pickle may start with `I1\\n0` (INT, POP) rather than GLOBAL or MARK."""
    pd = pytest.importorskip("pandas")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload", b"I1\n0" + GETCWD)
    (tmp_path / "frame.pkl.zip").write_bytes(buf.getvalue())
    assert pd.read_pickle(tmp_path / "frame.pkl.zip") == os.getcwd()
    assert verdicts(tmp_path)["frame.pkl.zip"] == "critical"  # was high ("no pickle member")


def test_zip_members_that_are_not_pickles_stay_quiet(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    torch.save({"w": torch.zeros(4), "layer": torch.nn.Linear(2, 2).state_dict()}, tmp_path / "model.pt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("little", b"little")
        archive.writestr("notes.txt", b"(just text)\n")
        archive.writestr("weights.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=0))
    (tmp_path / "bundle.zip").write_bytes(buf.getvalue())
    found = verdicts(tmp_path)
    assert found["model.pt"] == found["bundle.zip"] == "low"


def test_zip64_torch_checkpoint(tmp_path: Path) -> None:
    import torch

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        with archive.open("archive/data.pkl", "w", force_zip64=True) as member:
            member.write(b"\x80\x02" + GETCWD)
        archive.writestr("archive/version", "3\n")
    (tmp_path / "model.pt").write_bytes(buf.getvalue())
    assert torch.load(tmp_path / "model.pt", weights_only=False) == os.getcwd()
    assert verdicts(tmp_path)["model.pt"] == "critical"


# -- chat templates: attribute names that reach the sandbox through other routes ---------------------------
# jinja2 3.1 reads attributes by a name given at render time in `attr`, in every filter taking `attribute`
# (also positionally: `sum(iterable, attribute)`, `join(value, d, attribute)`, `unique/min/max(value,
# case_sensitive, attribute)`, `sort(value, reverse, case_sensitive, attribute)`), in the filter `map` applies
# by name (`map('attr', key)`), and in `str.format` fields (`'{0.x}'.format(obj)`, Python's format spec;
# the sandbox checks them, jinja2 sandbox.py `wrap_str_format`). Each was missed on the AST (no construct);
# a sample render does not reach them when they are gated on the conversation.

U = "'_' ~ '_'"  # two underscores, never a literal "__"
TEMPLATE_ATTACKS = {
    "map_attr_filter": f"{{{{ messages|map('attr', {U} ~ 'class' ~ {U})|list }}}}",
    "map_computed_filter": "{% set f = 'at' ~ 'tr' %}{{ messages|map(f, 'content')|list }}",
    "join_attribute": f"{{{{ messages|join(attribute={U} ~ 'class' ~ {U}) }}}}",
    "join_positional": f"{{{{ messages|join(', ', {U} ~ 'class' ~ {U}) }}}}",
    "sum_positional": f"{{{{ messages|sum({U} ~ 'class' ~ {U}) }}}}",
    "unique_positional": f"{{{{ messages|unique(false, {U} ~ 'class' ~ {U})|list }}}}",
    "max_positional": f"{{{{ messages|max(false, {U} ~ 'class' ~ {U}) }}}}",
    "sort_positional": f"{{{{ messages|sort(false, false, {U} ~ 'class' ~ {U}) }}}}",
    "dotted_private_attribute": "{{ messages|map(attribute='content._x')|list }}",
    "format_method": f"{{{{ ('{{0.' ~ {U} ~ 'class' ~ {U} ~ '}}').format(messages) }}}}",
    "format_map_method": f"{{{{ ('{{m.' ~ {U} ~ 'class' ~ {U} ~ '}}').format_map({{'m': messages}}) }}}}",
    "format_from_request": "{{ messages[0].content.format(messages) }}",
    "format_private_field": "{{ '{0._x}'.format(messages) }}",
}


@pytest.mark.parametrize("name", sorted(TEMPLATE_ATTACKS))
def test_chat_template_attribute_routes(tmp_path: Path, name: str) -> None:
    from owstack.security.templates import find_ssti

    source = "{% if messages|length > 9 %}" + TEMPLATE_ATTACKS[name] + "{% endif %}"  # gated: no sample render
    issues = find_ssti(source)
    expected = "medium" if name == "format_from_request" else "critical"
    assert issues and max(ORDER.index(i.severity) for i in issues) == ORDER.index(expected), (name, issues)
    (tmp_path / "chat_template.jinja").write_text(source)
    assert verdicts(tmp_path)["chat_template.jinja"] == expected


@pytest.mark.parametrize("container", ["gguf", "tokenizer_config.json", "chat_template.json"])
@pytest.mark.parametrize("name", ["map_attr_filter", "join_attribute", "format_method"])
def test_chat_template_attribute_routes_in_every_container(tmp_path: Path, container: str, name: str) -> None:
    import json

    source = "{% if messages|length > 9 %}" + TEMPLATE_ATTACKS[name] + "{% endif %}"
    if container == "gguf":
        import gguf
        import numpy as np

        writer = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "llama")
        writer.add_chat_template(source)
        writer.add_tensor("w", np.zeros((8,), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        file = "model.gguf"
    else:
        file = container
        (tmp_path / file).write_text(json.dumps({"chat_template": source, "bos_token": "<s>"}))
    assert verdicts(tmp_path)[file] == "critical"


def test_real_template_constructs_stay_clean() -> None:
    from owstack.security.templates import find_ssti

    benign = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}"
        "{{ messages|map(attribute='role')|join(', ') }}{{ messages|join(', ') }}"
        "{{ tools|map(attribute='function.name')|list|tojson }}{{ messages|sum(start=[])|length }}"
        "{{ messages|sort(attribute='role')|first }}{{ messages|unique(attribute='role')|list }}"
        "{{ '{0} {1}'.format(bos_token, eos_token) }}{{ '{0[role]}'.format(messages[0]) }}"
    )
    assert find_ssti(benign) == []


# -- ONNX: external data entries written value first, custom operator domains ------------------------------


def onnx_file(entry: bytes = b"", nodes: bytes = b"", functions: bytes = b"") -> bytes:
    """ModelProto(ir_version=8, graph=GraphProto(node=..., initializer=[TensorProto with external_data=entry]),
    functions=...): field numbers of onnx/onnx.proto3."""
    tensor = pb(1, 4) + pb(2, 1) + pb(8, b"w") + (pb(13, entry) + pb(14, 1) if entry else b"")
    return pb(1, 8) + pb(7, nodes + pb(5, tensor) + pb(2, b"g")) + functions


def node(op: str, domain: str = "") -> bytes:
    return pb(1, b"x") + pb(2, b"y") + pb(4, op.encode()) + (pb(7, domain.encode()) if domain else b"")


def test_onnx_external_data_entry_written_value_first(tmp_path: Path) -> None:
    """Protobuf fields may come in any order (protobuf encoding spec, "Field Order"): onnx reads
    StringStringEntryProto(value=..., key="location") as it reads key first (CVE-2022-25882 class)."""
    (tmp_path / "evil.onnx").write_bytes(onnx_file(entry=pb(2, b"../../../../etc/passwd") + pb(1, b"location")))
    (tmp_path / "ok.onnx").write_bytes(onnx_file(entry=pb(2, b"weights.bin") + pb(1, b"location")))
    found = verdicts(tmp_path)
    assert found["evil.onnx"] == "high"  # was clean
    assert "ok.onnx" not in found


def test_onnx_custom_operator_domain(tmp_path: Path) -> None:
    """A node of a domain onnxruntime does not implement runs only with a custom-op library registered by the
    host (onnxruntime SessionOptions.register_custom_ops_library): native code the model names."""
    (tmp_path / "custom.onnx").write_bytes(onnx_file(nodes=pb(1, node("Exec", "ai.evil.ops"))))
    inner = pb(5, pb(1, b"g") + pb(6, pb(1, node("Run", "my.ops"))))  # NodeProto.attribute(g=subgraph)
    (tmp_path / "nested.onnx").write_bytes(onnx_file(nodes=pb(1, node("If") + inner)))
    local = pb(25, pb(1, b"Gelu2") + pb(7, node("Tanh")) + pb(10, b"local.fn"))  # FunctionProto
    std = pb(1, node("Relu")) + pb(1, node("FusedMatMul", "com.microsoft")) + pb(1, node("Gelu2", "local.fn"))
    (tmp_path / "ok.onnx").write_bytes(onnx_file(nodes=std, functions=local))
    found = verdicts(tmp_path)
    assert found["custom.onnx"] == found["nested.onnx"] == "medium"  # both were clean
    assert "ok.onnx" not in found


# -- Keras: layers that read files or other models named in their config --------------------------------


def layer(module: str, cls: str, **config: object) -> dict[str, object]:
    return {"module": module, "class_name": cls, "config": {"name": cls.lower(), **config}, "registered_name": None}


KERAS_FILE_READS = {
    # index_lookup.py set_vocabulary(path) reads the file (tf.io.gfile: also gs:// and http URLs) into the
    # model, recoverable with get_vocabulary(); refused in safe mode only since keras-team/keras#21751
    "string_lookup": layer("keras.layers", "StringLookup", vocabulary="/home/user/.aws/credentials"),
    "text_vectorization": layer("keras.layers", "TextVectorization", vocabulary="../../.ssh/id_rsa"),
    # Keras Hub tokenizers read vocabulary, merges and SentencePiece protos by path (keras-team/keras-hub#2517)
    "hub_tokenizer": layer(
        "keras_hub.src.tokenizers.sentence_piece_tokenizer", "SentencePieceTokenizer", proto="/etc/shadow"
    ),
    # loads another (TensorFlow SavedModel) model whose graph this file does not hold
    "tfsm_layer": layer("keras.layers", "TFSMLayer", filepath="/tmp/evil_saved_model", call_endpoint="serve"),
}


@pytest.mark.parametrize("name", sorted(KERAS_FILE_READS))
def test_keras_layer_reading_a_named_file(tmp_path: Path, name: str) -> None:
    keras_archive(tmp_path / "model.keras", [layer("keras.layers", "Dense", units=2), KERAS_FILE_READS[name]])
    assert verdicts(tmp_path)["model.keras"] == "high"  # each was clean (keras_hub: high for its module)


def test_keras_hub_classes_are_keras_own(tmp_path: Path) -> None:
    """Keras Hub models name their registered classes by module (`keras_hub.src.models...`): not an import
    of an outside package (was high); their preset loaders stay critical."""
    backbone = layer("keras_hub.src.models.gemma.gemma_backbone", "GemmaBackbone", vocabulary_size=256)
    keras_archive(tmp_path / "ok.keras", [backbone])
    preset = {"module": "keras_hub.models", "class_name": "function", "config": "Backbone.from_preset"}
    keras_archive(tmp_path / "preset.keras", [layer("keras.layers", "Dense", units=2, kernel_initializer=preset)])
    found = verdicts(tmp_path)
    assert "ok.keras" not in found
    assert found["preset.keras"] == "critical"


def test_tf_keras_op_layer_calling_file_functions(tmp_path: Path) -> None:
    """tf.keras 2 saves TensorFlow calls in a functional model as TFOpLambda layers naming `tf.<function>`;
    the `.h5` model_config is read from the file's bytes."""
    import json

    def h5(function: str) -> bytes:
        op = {"class_name": "TFOpLambda", "config": {"name": "op", "function": function}}
        config = json.dumps({"class_name": "Functional", "config": {"layers": [op]}}).encode()
        return b"\x89HDF\r\n\x1a\n" + b"\0" * 64 + config + b"\0" * 64

    (tmp_path / "write.h5").write_bytes(h5("io.write_file"))
    (tmp_path / "gfile.h5").write_bytes(h5("io.gfile.rmtree"))
    (tmp_path / "ok.h5").write_bytes(h5("math.reduce_mean"))
    found = verdicts(tmp_path)
    assert found["write.h5"] == "critical" and found["gfile.h5"] == "high"  # both were clean
    assert "ok.h5" not in found


# -- safetensors: bytes no tensor covers, offsets that are JSON booleans ------------------------------------


def safetensors_file(header: dict[str, object], data: bytes = b"") -> bytes:
    import json

    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_safetensors_bytes_after_a_header_without_tensors(tmp_path: Path) -> None:
    """The reference loader refuses a buffer its tensors do not cover ("incomplete metadata, file not fully
    covered"): with no tensor at all the scanner took any bytes after the header (here a pickle) as fine."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file, save_file

    (tmp_path / "hidden.safetensors").write_bytes(safetensors_file({"__metadata__": {"format": "pt"}}, GETCWD))
    (tmp_path / "bool.safetensors").write_bytes(
        safetensors_file({"t": {"dtype": "U8", "shape": [1], "data_offsets": [False, True]}}, b"x")
    )
    for name in ("hidden.safetensors", "bool.safetensors"):
        with pytest.raises(SafetensorError):
            load_file(tmp_path / name)
    import numpy as np

    save_file({}, str(tmp_path / "empty.safetensors"), metadata={"format": "pt"})
    save_file({"w": np.zeros((2, 3), dtype=np.float32)}, str(tmp_path / "ok.safetensors"), metadata={"format": "pt"})
    found = verdicts(tmp_path)
    assert found["hidden.safetensors"] == found["bool.safetensors"] == "high"  # both were clean
    assert "empty.safetensors" not in found and "ok.safetensors" not in found


# -- chat templates that exhaust the scanner's own render (memory or time in one step) ---------------------

TEMPLATE_BOMBS = {
    # each builds gigabytes or loops 10**9 times inside one filter, method or operator: no loop step, call or
    # concatenation check ran before it (the sandbox's caps were checked between steps only)
    "center_filter": "{{ 'a'|center(3000000000) }}",
    "center_method": "{{ 'a'.center(3000000000) }}",
    "zfill_method": "{{ '1'.zfill(3000000000) }}",
    "percent_width": "{{ '%03000000000d' % 1 }}",
    "format_filter_width": "{{ '%03000000000d'|format(1) }}",
    "format_method_width": "{{ '{:>3000000000}'.format(1) }}",
    "format_nested_width": "{{ '{:>{}}'.format(1, 3000000000) }}",
    "indent_width": "{{ 'a\\nb'|indent(3000000000) }}",
    "batch_fill": "{{ [1]|batch(3000000000, 0)|list|length }}",
    "slice_loop": "{{ [1]|slice(1000000000)|list|length }}",
    "replace_growth": "{% set s = 'a' * 1000000 %}{{ s|replace('a', 'a' * 4000)|length }}",
    "join_growth": "{% set l = [1] * 1000000 %}{{ l|join('x' * 4000)|length }}",
    "lipsum_size": "{{ lipsum(100000, false, 1000, 100000)|length }}",
}


@pytest.mark.parametrize("name", sorted(TEMPLATE_BOMBS))
def test_template_bombs_are_stopped_before_they_run(name: str) -> None:
    import time

    from owstack.security.templates import TemplateSandboxViolation, render

    start = time.monotonic()
    with pytest.raises(TemplateSandboxViolation):
        render(TEMPLATE_BOMBS[name], messages=[])
    assert time.monotonic() - start < 1.0


def test_ordinary_formatting_still_renders() -> None:
    from owstack.security.templates import render

    source = (
        "{{ '%d' % 1733270400 }} {{ '%5.2f'|format(3.14159) }} {{ '{:>8}'.format('x') }} {{ 'ab'|center(6) }}"
        "{{ 'a\\nb'|indent(4) }}{{ [1, 2, 3]|batch(2)|list|length }}{{ messages|map(attribute='role')|join(', ') }}"
        "{{ 'a-b'|replace('-', ' ') }}{{ '7'.zfill(3) }}{{ lipsum(1, false, 5, 10)|length > 0 }}"
    )
    out = render(source, messages=[{"role": "user", "content": "hi"}])
    assert out.startswith("1733270400  3.14        x   ab  ") and "user" in out and "007" in out


# -- code an archive carries, Hydra targets in model configs -------------------------------------------


def torch_weights() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    return buf.getvalue()


def test_nemo_config_with_a_dangerous_hydra_target(tmp_path: Path) -> None:
    """NeMo restores a `.nemo` tar by passing model_config.yaml to hydra.utils.instantiate, which imports and
    calls any `_target_` (CVE-2025-23304)."""
    evil = b"target: x\nencoder:\n  _target_: builtins.exec\n  _args_: ['import os; os.getcwd()']\n"
    ok = b"encoder:\n  _target_: nemo.collections.asr.modules.ConformerEncoder\n  feat_in: 80\n"
    weights = torch_weights()
    (tmp_path / "evil.nemo").write_bytes(tar_of({"model_config.yaml": evil, "model_weights.ckpt": weights}))
    (tmp_path / "ok.nemo").write_bytes(tar_of({"model_config.yaml": ok, "model_weights.ckpt": weights}))
    found = verdicts(tmp_path)
    assert found["evil.nemo"] == "critical"  # was low
    assert found["ok.nemo"] == "low"


def test_safetensors_metadata_with_a_dangerous_hydra_target(tmp_path: Path) -> None:
    """Libraries that keep their model config in a safetensors file's __metadata__ and instantiate it with
    Hydra (Unit 42's FlexTok and Uni2TS reports) run its `_target_` on load."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    weights = {"w": np.zeros(2, dtype=np.float32)}
    evil = json.dumps({"_target_": "os.system", "_args_": ["id"]})
    save_file(weights, str(tmp_path / "evil.safetensors"), metadata={"format": "pt", "config": evil})
    ok = json.dumps({"_target_": "flextok.model.FlexTok", "depth": 2})
    save_file(weights, str(tmp_path / "ok.safetensors"), metadata={"format": "pt", "config": ok})
    found = verdicts(tmp_path)
    assert found["evil.safetensors"] == "critical"  # was clean
    assert "ok.safetensors" not in found


ELF_HEADER = b"\x7fELF\x02\x01\x01" + b"\0" * 57


@pytest.mark.parametrize(
    ("file", "member", "data"),
    [
        ("model.pt2", "model/data/aotinductor/model/model.so", ELF_HEADER),  # aoti_load_package dlopens it
        ("model.pt2", "model/data/aotinductor/model/blob", ELF_HEADER),  # by its magic, whatever its name
        ("handler.mar", "handler.py", b"import os\nos.getcwd()\n"),  # TorchServe imports the handler
        ("pkg.pt", "model/resnet.py", b"import os\n"),  # torch.package's PackageImporter imports it
        ("repo.zip", "modeling_evil.py", b"import os\n"),  # trust_remote_code runs it
    ],
    ids=["aoti_so", "aoti_elf_magic", "mar_handler", "torch_package", "zipped_remote_code"],
)
def test_archive_carrying_native_or_python_code(tmp_path: Path, file: str, member: str, data: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("model/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2))
        archive.writestr(member, data)
        if file.endswith(".mar"):
            archive.writestr("MAR-INF/MANIFEST.json", '{"model": {"handler": "handler.py"}}')
        elif file == "pkg.pt":
            archive.writestr("model/.data/extern_modules", "torch\n")
    (tmp_path / file).write_bytes(buf.getvalue())
    assert verdicts(tmp_path)[file] == "high"  # each was low


def test_torchscript_code_is_not_python_source(tmp_path: Path) -> None:
    import torch

    class Plain(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    torch.jit.save(torch.jit.script(Plain()), str(tmp_path / "plain.pt"))
    assert verdicts(tmp_path)["plain.pt"] in ("low", "medium")


# -- protocol 0 integers as CPython reads them ----------------------------------------------------------


@pytest.mark.parametrize("text", [b"0x10", b"010", b"-0x1F", b"1_000", b" 7", b"0b11", b"0o17", b"00", b"01", b"12"])
def test_protocol_0_integers_read_as_cpython_reads_them(text: bytes) -> None:
    """CPython's INT is `strtol(text, 0)` then `int(text, 0)` (Modules/_pickle.c load_int; Lib/pickle.py), LONG
    `int(text, 0)`: pickletools' readers take base 10 only, so `I0x0` stopped the scanner where pickle.load
    goes on."""
    from owstack.security.model_scan.pickle_vm import Events, Machine

    events = Events(on_import=lambda module, name, pos: None, on_computed_import=lambda pos, why: None)
    for op in (b"I", b"L"):
        data = op + text + b"\n."
        try:
            expected = pickle.loads(data)
        except ValueError:
            continue  # LONG refuses what only strtol reads ("010")
        assert Machine(io.BytesIO(data), events).run().const == expected


@pytest.mark.parametrize("name", ["notes.txt", "no_suffix", "model.pkl"])
def test_hex_integer_before_the_payload(tmp_path: Path, name: str) -> None:
    data = b"I0x0\n0" + GETCWD  # INT 0 (hex), POP, then the payload
    assert pickle.loads(data) == os.getcwd()
    (tmp_path / name).write_bytes(data)
    assert verdicts(tmp_path)[name] == "critical"  # notes.txt and no_suffix were not scanned, model.pkl high


# -- zip members that extract outside the folder -------------------------------------------------------


@pytest.mark.parametrize("member", ["../../home/user/.bashrc", "/etc/cron.d/job", "C:/Users/x/evil.pkl", "link"])
def test_zip_member_pointing_outside_the_archive(tmp_path: Path, member: str) -> None:
    """Zip Slip (Snyk, 2018): an extractor that trusts member names writes outside its target folder; a
    symbolic-link member (Unix mode in external_attr) redirects later writes. The tar reader refused both
    already; a zip's pickles are still judged (here a payload: critical)."""
    import stat

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        info = zipfile.ZipInfo("model/link.pkl" if member == "link" else member)
        if member == "link":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, b"/etc/passwd" if member == "link" else b"#!/bin/sh\n")
        archive.writestr("model/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2))
    (tmp_path / "model.pt").write_bytes(buf.getvalue())
    with zipfile.ZipFile(buf, "a") as archive:
        archive.writestr("model/extra.pkl", b"\x80\x02" + GETCWD)
    (tmp_path / "payload.pt").write_bytes(buf.getvalue())
    found = verdicts(tmp_path)
    assert found["model.pt"] == "high"  # was low
    assert found["payload.pt"] == "critical"


# -- another format under a pickle name: what torch.load and pickle.load read from byte 0 ------------------


def test_gguf_magic_whose_bytes_are_also_a_pickle(tmp_path: Path) -> None:
    """`GGUF` starts with BINFLOAT ('G', 8 bytes of argument): pickle.load, and torch.load for any file that is
    no zip, run whatever follows. Under a pickle name the file is now also read as that pickle (a GGUF valid
    as both needs millions of header entries; this one is a malformed GGUF, which was only high)."""
    data = b"GGUF\x03\x00\x00\x00" + b"\x00" + GETCWD
    assert pickle.loads(data) == os.getcwd()
    (tmp_path / "pytorch_model.bin").write_bytes(data)
    (tmp_path / "model.gguf").write_bytes(data)
    found = verdicts(tmp_path)
    assert found["pytorch_model.bin"] == "critical"
    assert found["model.gguf"] == "high"  # llama.cpp reads it as a (malformed) GGUF, no loader unpickles it


def test_tokenizer_config_chat_template_as_a_mapping(tmp_path: Path) -> None:
    """transformers keeps `chat_template` as given (tokenization_utils_base `__init__`) and renders a dict's
    "default" or "tool_use" entry (`get_chat_template`): the scanner read only a string or a named list."""
    import json

    evil = "{% if tools %}" + TEMPLATE_ATTACKS["join_attribute"] + "{% endif %}"
    config = {"chat_template": {"default": "{% for m in messages %}{{ m['content'] }}{% endfor %}", "tool_use": evil}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert verdicts(tmp_path)["tokenizer_config.json"] == "critical"  # was not looked at


def test_keras_function_turning_safe_mode_off_and_hydra_gadgets(tmp_path: Path) -> None:
    setter = {"module": "keras.src.backend.common.global_state", "class_name": "function"}
    setter["config"] = "set_global_attribute"
    keras_archive(tmp_path / "model.keras", [layer("keras.layers", "Dense", units=2, activation=setter)])
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04" + sg("hydra.utils", "get_method") + su("os.getcwd") + b"\x85R.")
    found = verdicts(tmp_path)
    assert found["model.keras"] == "critical"  # was clean
    assert found["model.pkl"] == "critical"  # was high


def test_onnx_past_the_walk_limit_is_not_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry hidden after more messages than the walk reads must not pass as clean (the limit lowered
    here to keep the file small; the real one is 2,000,000 messages)."""
    from owstack.security.model_scan import protobuf_check

    monkeypatch.setattr(protobuf_check, "_MAX_MESSAGES", 3)
    nodes = b"".join(pb(1, node("Relu")) for _ in range(5))
    (tmp_path / "big.onnx").write_bytes(onnx_file(entry=pb(2, b"w.bin") + pb(1, b"location"), nodes=nodes))
    assert verdicts(tmp_path)["big.onnx"] == "high"


# -- the scanner's own memory: pickles that make it hold millions of values --------------------------------


@pytest.mark.parametrize("shape", ["deep_stack", "nested_lists"])
def test_pickle_that_would_exhaust_the_machine_is_unscannable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """Every value the symbolic machine makes stays alive (memo, containers): `]]]...` or `]a]a...` made it hold
    one object per opcode up to the 20,000,000-opcode limit (gigabytes). Past 2,000,000 stacked values or
    3,000,000 containers the pickle is unscannable (high); the limits are divided by 100 here for speed."""
    from owstack.security.model_scan import pickle_vm

    assert (pickle_vm.MAX_STACK, pickle_vm.MAX_CONTAINERS) == (2_000_000, 3_000_000)
    monkeypatch.setattr(pickle_vm, "MAX_STACK", 20_000)
    monkeypatch.setattr(pickle_vm, "MAX_CONTAINERS", 30_000)
    body = b"]" * 20_100 if shape == "deep_stack" else b"]" + b"]a" * 30_100
    (tmp_path / "model.pkl").write_bytes(b"\x80\x02" + body + b".")
    assert verdicts(tmp_path)["model.pkl"] == "high"


def test_large_real_pickles_stay_within_the_limits(tmp_path: Path) -> None:
    from owstack.security.model_scan import pickle_vm

    vocab = {f"tok{i}": i for i in range(20_000)}
    rows = [(i, float(i)) for i in range(15_000)]
    data = pickle.dumps({"vocab": vocab, "rows": rows}, protocol=4)
    (tmp_path / "vocab.pkl").write_bytes(data)
    assert verdicts(tmp_path)["vocab.pkl"] == "low"
    assert 100 * len(rows) < pickle_vm.MAX_CONTAINERS  # a table of 15,000 rows is far from the limit


def test_nemo_target_key_and_keras_dataset_loader(tmp_path: Path) -> None:
    """NeMo imports a config's top-level `target` by path as well (model_utils.import_class_by_path);
    keras.datasets.*.load_data downloads an archive and unpickles it."""
    config = b"target: runpy.run_path\nencoder:\n  feat_in: 80\n"
    (tmp_path / "evil.nemo").write_bytes(tar_of({"model_config.yaml": config, "model_weights.ckpt": torch_weights()}))
    loader = {"module": "keras.datasets.cifar10", "class_name": "function", "config": "load_data"}
    keras_archive(tmp_path / "model.keras", [layer("keras.layers", "Dense", units=2, activation=loader)])
    found = verdicts(tmp_path)
    assert found["evil.nemo"] == found["model.keras"] == "critical"  # were low and clean
