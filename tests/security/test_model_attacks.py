"""Model files an outsider would try next (issue 16): each malicious sample is first shown to run code
in the real loader (a payload that creates a marker file in the test's tmp folder), then shown to be
caught; each benign twin is shown to pass without a high finding."""

from __future__ import annotations

import bz2
import datetime
import gzip
import io
import json
import lzma
import os
import pickle
import shlex
import tarfile
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _model_files import pb as field
from model_findings import by_file, failing

from owstack.security.model_scan.pickles import scan_pickles


def u(text: str) -> bytes:
    """SHORT_BINUNICODE"""
    return b"\x8c" + bytes([len(text)]) + text.encode()


def stack_global_call(module: str, name: str, arg: str) -> bytes:
    """protocol 4: `module` `name` STACK_GLOBAL, called with one string."""
    return b"\x80\x04" + u(module) + u(name) + b"\x93" + u(arg) + b"\x85R."


def touch(marker: Path) -> str:
    return f"touch {shlex.quote(str(marker))}"


def runs(load: Callable[[], object], marker: Path) -> bool:
    """Load a sample with the real loader and tell whether its payload ran (only for samples built here)."""
    marker.unlink(missing_ok=True)
    try:
        load()
    except Exception:
        pass
    return marker.exists()


# -- import paths: protocol 4 dotted names are attribute paths ------------------------------------------


def test_dotted_names_are_checked_as_whole_paths(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    through_os = stack_global_call("posixpath", "os.system", touch(marker))
    assert runs(lambda: pickle.loads(through_os), marker)
    samples = {
        "posixpath.os.system": through_os,
        "torch.hub.load": stack_global_call("torch", "hub.load", "owner/repo"),
        "pkgutil.resolve_name": stack_global_call("pkgutil", "resolve_name", "os:system"),
        "numpy.ctypeslib.load_library": stack_global_call("numpy", "ctypeslib.load_library", "x"),
        "copyreg.add_extension": stack_global_call("copyreg", "add_extension", "x"),
        "collections.abc.sys.modules": stack_global_call("collections", "abc.sys.modules", "x"),
    }
    for what, data in samples.items():
        assert {h.what: h.severity for h in scan_pickles(data).hits} == {what: "critical"}, what


def test_library_reconstructors_are_not_high(tmp_path: Path) -> None:
    """Benign twins: numpy random state, protocol 5 arrays, datetime values, a pandas DataFrame; before the
    reviewed lists they gave critical (numpy's dunder-named constructors) or high findings."""
    pd = pytest.importorskip("pandas")
    samples = {
        "rng.pkl": {"legacy": np.random.RandomState(0), "new": np.random.default_rng(0)},
        "p5.pkl": np.arange(6.0).reshape(2, 3),
        "when.pkl": {"at": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC), "span": datetime.timedelta(3)},
        "frame.pkl": pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "t": pd.to_datetime(["2026-01-01", "2026-01-02"])}),
    }
    for name, obj in samples.items():
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=5))
    found = by_file(tmp_path)
    for name in samples:
        assert not failing(found[name]), (name, found[name])
    assert found["p5.pkl"] == {"OWS-MDL-000": "info", "OWS-MDL-040": "low"}


# Imports of a real transformers 4.x `training_args.bin` (torch.save(TrainingArguments(...))) and of a
# Lightning checkpoint's OmegaConf hyper-parameters, recorded 2026-12-03.
TRAINING_ARGS_IMPORTS = [
    ("transformers.training_args", "TrainingArguments"),
    ("transformers.trainer_utils", "IntervalStrategy"),
    ("transformers.training_args", "OptimizerNames"),
    ("transformers.trainer_pt_utils", "AcceleratorConfig"),
    ("accelerate.state", "PartialState"),
    ("accelerate.utils.dataclasses", "DistributedType"),
    ("omegaconf.dictconfig", "DictConfig"),
    ("omegaconf.base", "ContainerMetadata"),
    ("typing", "Any"),
    ("pathlib", "PosixPath"),
]


def test_training_files_of_common_libraries_are_not_high() -> None:
    from owstack.security.model_scan.pickle_policy import verdict

    assert {f"{m}.{n}": verdict(m, n) for m, n in TRAINING_ARGS_IMPORTS if verdict(m, n) not in (None, "medium")} == {}
    assert verdict("pathlib", "PosixPath.write_text") == "critical"


def test_torchscript_archive_is_not_high(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())), tmp_path / "s.pt")
    found = by_file(tmp_path)["s.pt"]
    assert not failing(found) and found["OWS-MDL-020"] == "medium"


def test_numeric_npz_is_analysed_not_unscannable(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "arrays.npz", a=np.arange(100), b=np.ones((3, 3)))
    assert by_file(tmp_path)["arrays.npz"] == {"OWS-MDL-000": "info"}


def test_fickling_verdict_kept_when_an_import_is_not_reviewed() -> None:
    from owstack.security.model_scan.pickle_files import second_opinion

    evil = stack_global_call("posixpath", "os.system", "id")
    assert second_opinion(evil, [(0, len(evil))])
    rng = pickle.dumps(np.random.default_rng(0), protocol=4)
    assert second_opinion(rng, [(0, len(rng))]) == []


# -- folders: names lie, links leave ------------------------------------------------------------------


def test_pickles_found_by_content_whatever_their_name(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proto0 = f"cos\nsystem\n(S'{touch(marker)}'\ntR.".encode()
    assert runs(lambda: pickle.loads(proto0), marker)
    evil4 = stack_global_call("os", "system", touch(marker))
    (tmp_path / "notes.txt").write_bytes(proto0)
    (tmp_path / "weights").write_bytes(evil4)
    (tmp_path / "model.safetensors").write_bytes(evil4)
    (tmp_path / ".hidden.pkl").write_bytes(evil4)
    for suffix, compress in (("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)):
        (tmp_path / f"model.pkl.{suffix}").write_bytes(compress(evil4))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("archive/data.pkl", evil4)
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as zf:
        zf.writestr("checkpoints/inner.pt", inner.getvalue())
    with zipfile.ZipFile(tmp_path / "renamed.pt", "w") as zf:  # a protocol 0 pickle as an unnamed member
        zf.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2))
        zf.writestr("archive/extra", proto0)
        zf.writestr("archive/version", "3\n")
    # benign twins: ordinary text files are not model files, a real safetensors file is not a pickle
    (tmp_path / "README.md").write_text("# model\ncats and dogs\n")
    (tmp_path / "vocab.txt").write_text("cat\ndog\nbird\n")
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    header += b" " * (0x0480 - len(header))  # its length field starts with the bytes of a protocol 4 pickle
    (tmp_path / "real.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 4)
    found = by_file(tmp_path)
    evil = ["notes.txt", "weights", "model.safetensors", ".hidden.pkl", "bundle.zip", "renamed.pt"]
    for name in evil + [f"model.pkl.{s}" for s in ("gz", "bz2", "xz")]:
        assert found[name].get("OWS-MDL-021") == "critical", (name, found.get(name))
    assert not {"README.md", "vocab.txt", "config.json"} & set(found)
    assert found["real.safetensors"] == {"OWS-MDL-000": "info"}


def test_links_out_of_the_folder_are_reported_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "evil.pkl").write_bytes(stack_global_call("os", "system", "id"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "ok.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    (models / "passwd.bin").symlink_to("/etc/passwd")
    (models / "evil.pkl").symlink_to(outside / "evil.pkl")
    (models / "sub").symlink_to(outside, target_is_directory=True)
    (models / "same.pkl").symlink_to(models / "ok.pkl")  # a link inside the folder is scanned
    found = by_file(models)
    for name in ("passwd.bin", "evil.pkl", "sub"):
        assert found[name] == {"OWS-SCAN-002": "high"}, name
    assert found["same.pkl"] == {"OWS-MDL-000": "info", "OWS-MDL-040": "low"}
    assert "sub/evil.pkl" not in found


def legacy_tar(storages: bytes, tensors: bytes, obj: bytes) -> bytes:
    """A legacy tar `torch.save` file (what torch < 0.4 wrote and torch.load still reads)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("sys_info", pickle.dumps({"protocol_version": 1001}, 2)), ("pickle", obj)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, data in (("storages", storages), ("tensors", tensors)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def storage_record(views: bytes) -> bytes:
    """One float storage of two elements (a pickle, then raw bytes), then the storage-views pickle."""
    args = b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\nt."
    return pickle.dumps(1, 2) + args + (2).to_bytes(8, "little") + b"\x00" * 8 + views


def test_legacy_tar_torch_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    ok = legacy_tar(storage_record(pickle.dumps([], 2)), pickle.dumps(0, 2), pickle.dumps({"a": 1}, 2))
    (tmp_path / "ok.pt").write_bytes(ok)
    assert torch.load(tmp_path / "ok.pt", weights_only=False) == {"a": 1}
    evil_views = b"\x80\x02cos\nsystem\nX" + len(touch(marker)).to_bytes(4, "little") + touch(marker).encode()
    evil_views += b"\x85R."
    evil = legacy_tar(storage_record(evil_views), pickle.dumps(0, 2), pickle.dumps({"a": 1}, 2))
    (tmp_path / "evil.pth.tar").write_bytes(evil)
    assert runs(lambda: torch.load(tmp_path / "evil.pth.tar", weights_only=False), marker)
    found = by_file(tmp_path)
    assert found["ok.pt"] == {"OWS-MDL-000": "info", "OWS-MDL-040": "low"}
    assert found["evil.pth.tar"].get("OWS-MDL-021") == "critical"


def test_tar_member_escaping_the_archive(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../.bashrc")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"id\n"))
    (tmp_path / "model.nemo").write_bytes(buf.getvalue())
    assert by_file(tmp_path)["model.nemo"]["OWS-MDL-050"] == "high"


# -- Keras, ONNX, TensorFlow ---------------------------------------------------------------------------

LAMBDA_KERAS3: dict[str, object] = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {"name": "pwn", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}},
}
LAMBDA_KERAS2: dict[str, object] = {
    "class_name": "Lamb\\u0064a",
    "config": {"name": "l", "function": ["4wEA" * 50_000, None, None]},  # 200 KB: past the first window
}
DENSE: dict[str, object] = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}}


def keras_model(layers: list[dict[str, object]]) -> dict[str, object]:
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": {"layers": layers}}


def keras_zip(path: Path, config: dict[str, object]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", '{"keras_version": "3.6.0"}')
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 32)
    return path


def test_keras_configs_that_run_code(tmp_path: Path) -> None:
    keras_zip(tmp_path / "lambda.keras", keras_model([DENSE, LAMBDA_KERAS3]))
    call = {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
    keras_zip(tmp_path / "module.keras", keras_model([{**DENSE, "config": {"activation": call}}]))
    keras_zip(tmp_path / "renamed.zip", keras_model([LAMBDA_KERAS3]))
    keras_zip(tmp_path / "ok.keras", keras_model([DENSE]))
    # the bytes of a Keras 2 .h5 model: the config JSON sits in the model_config attribute, escapes and all
    config = json.dumps({"class_name": "Sequential", "config": {"layers": [DENSE, "LAMBDA"]}})
    config = config.replace('"LAMBDA"', json.dumps(LAMBDA_KERAS2).replace("\\\\u0064", "\\u0064"))
    attribute = b"model_config\x00" + b"\x00" * 7 + config.encode()
    (tmp_path / "lambda.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64 + attribute + b"\x00" * 64)
    plain = json.dumps({"class_name": "Sequential", "config": {"layers": [DENSE]}}).encode()
    (tmp_path / "ok.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64 + plain + b"\x00" * 64)
    assert json.loads(config)["config"]["layers"][1]["class_name"] == "Lambda"  # what Keras reads
    found = by_file(tmp_path)
    for name in ("lambda.keras", "renamed.zip", "lambda.h5", "module.keras"):
        assert found[name].get("OWS-MDL-024") == "critical", (name, found[name])
    assert found["ok.keras"] == {"OWS-MDL-000": "info"}
    assert found["ok.h5"] == {"OWS-MDL-000": "info"}


def onnx_model(location: str) -> bytes:
    """ModelProto(ir_version=8, graph=GraphProto(initializer=[TensorProto stored as external data]))."""
    entry = field(1, b"location") + field(2, location.encode())
    tensor = field(1, 4) + field(2, 1) + field(8, b"w") + field(13, entry) + field(14, 1)
    return field(1, 8) + field(7, field(5, tensor) + field(2, b"g"))


def test_onnx_external_data_leaving_the_folder(tmp_path: Path) -> None:
    (tmp_path / "evil.onnx").write_bytes(onnx_model("../../../../etc/passwd"))
    (tmp_path / "abs.onnx").write_bytes(onnx_model("/root/.ssh/id_rsa"))
    (tmp_path / "ok.onnx").write_bytes(onnx_model("model.onnx_data"))
    (tmp_path / "broken.onnx").write_bytes(field(7, b"xx")[:-1])
    found = by_file(tmp_path)
    assert found["evil.onnx"]["OWS-MDL-025"] == "high" and found["abs.onnx"]["OWS-MDL-025"] == "high"
    assert found["ok.onnx"] == {"OWS-MDL-000": "info"}
    assert found["broken.onnx"]["OWS-MDL-050"] == "high"


def saved_model(nodes: list[tuple[str, str]]) -> bytes:
    """SavedModel(meta_graphs=[MetaGraphDef(graph_def=GraphDef(node=[NodeDef(name, op)]))])."""
    graph = b"".join(field(1, field(1, name.encode()) + field(2, op.encode())) for name, op in nodes)
    return field(1, 1) + field(2, field(2, graph))


def test_tensorflow_graph_file_ops(tmp_path: Path) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "saved_model.pb").write_bytes(saved_model([("x", "Placeholder"), ("r", "ReadFile")]))
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "saved_model.pb").write_bytes(saved_model([("ReadFile", "Placeholder"), ("m", "MatMul")]))
    keras = json.dumps(keras_model([LAMBDA_KERAS3])).encode()
    (tmp_path / "ok" / "keras_metadata.pb").write_bytes(field(1, field(4, keras)))
    found = by_file(tmp_path)
    assert found["evil/saved_model.pb"]["OWS-MDL-026"] == "high"
    assert found["ok/saved_model.pb"] == {"OWS-MDL-000": "info"}
    assert found["ok/keras_metadata.pb"]["OWS-MDL-024"] == "critical"


def test_sentencepiece_model_is_not_a_pickle(tmp_path: Path) -> None:
    piece = field(1, b"\xe2\x96\x81the") + b"\x15\x00\x00\x80\xbf" + field(3, 1)
    (tmp_path / "tokenizer.model").write_bytes(b"".join(field(1, piece) for _ in range(50)))
    (tmp_path / "bad.model").write_bytes(b"\x0a\xff\xff\xff\x0f" + b"x" * 8)
    found = by_file(tmp_path)
    assert found["tokenizer.model"] == {"OWS-MDL-000": "info"}
    assert found["bad.model"]["OWS-MDL-050"] == "high"


# -- the pickle machine: what a loader reads past the first pickle --------------------------------------


def test_object_npy_whatever_the_dtype_spelling(tmp_path: Path) -> None:
    from numpy.lib import format as npy

    marker = tmp_path / "ran"
    payload = stack_global_call("os", "system", touch(marker))
    for descr in ("object", "object_", "|O"):
        head = io.BytesIO()
        npy.write_array_header_1_0(head, {"descr": descr, "fortran_order": False, "shape": (1,)})
        path = tmp_path / f"{descr.strip('|')}.npy"
        path.write_bytes(head.getvalue() + payload)
        assert runs(partial(np.load, path, allow_pickle=True), marker)
    found = by_file(tmp_path)
    for name in ("object.npy", "object_.npy", "O.npy"):
        assert found[name].get("OWS-MDL-021") == "critical", (name, found[name])


def test_pickle_reusing_the_memo_of_the_one_before(tmp_path: Path) -> None:
    """`Unpickler.load()` called twice keeps its memo: the second pickle takes os/system from the first."""
    marker = tmp_path / "ran"
    first = b"\x80\x04" + u("os") + b"\x94" + u("system") + b"\x94" + b"0."  # stores the strings, returns one
    second = b"\x80\x04h\x00h\x01\x93" + u(touch(marker)) + b"\x85R."
    (tmp_path / "two.pkl").write_bytes(first + second)

    def load_twice() -> None:
        with (tmp_path / "two.pkl").open("rb") as fh:
            unpickler = pickle.Unpickler(fh)
            unpickler.load()
            unpickler.load()

    assert runs(load_twice, marker)
    assert by_file(tmp_path)["two.pkl"].get("OWS-MDL-021") == "critical"


def test_pickle_after_many_pickles_is_never_clean(tmp_path: Path) -> None:
    from owstack.security.model_scan.pickles import MAX_PICKLES

    (tmp_path / "many.pkl").write_bytes(b"N." * MAX_PICKLES + stack_global_call("os", "system", "id"))
    found = by_file(tmp_path)["many.pkl"]
    assert failing(found) and "OWS-MDL-040" not in found


def test_padded_pickle_with_another_name_and_special_files(tmp_path: Path) -> None:
    """A protocol 0 pickle whose first megabyte is one string constant is still read to its import; a FIFO
    is not opened (it would block) and a FIFO with a model name is unscannable."""
    from owstack.security.model_scan.discover import SNIFF_BYTES

    marker = tmp_path / "ran"
    padded = b"S'" + b"a" * SNIFF_BYTES + b"'\n0" + f"cos\nsystem\n(S'{touch(marker)}'\ntR.".encode()
    assert runs(lambda: pickle.loads(padded), marker)
    (tmp_path / "notes.txt").write_bytes(padded)
    (tmp_path / "long.txt").write_text("plain text\n" * (SNIFF_BYTES // 8))
    os.mkfifo(tmp_path / "pipe")
    os.mkfifo(tmp_path / "fifo.pkl")
    found = by_file(tmp_path)
    assert found["notes.txt"].get("OWS-MDL-021") == "critical"
    assert "long.txt" not in found and "pipe" not in found
    assert found["fifo.pkl"] == {"OWS-MDL-050": "high"}


def test_templates_transformers_also_loads(tmp_path: Path) -> None:
    ssti = "{{ ()|attr('__cla' ~ 'ss__') }}"
    (tmp_path / "additional_chat_templates").mkdir()
    (tmp_path / "additional_chat_templates" / "tool_use.jinja").write_text(ssti)
    (tmp_path / "processor_config.json").write_text(json.dumps({"chat_template": ssti}))
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "processor_config.json").write_text(json.dumps({"processor_class": "LlavaProcessor"}))
    found = by_file(tmp_path)
    assert found["additional_chat_templates/tool_use.jinja"]["OWS-MDL-010"] == "critical"
    assert found["processor_config.json"]["OWS-MDL-010"] == "critical"
    assert found["ok/processor_config.json"] == {"OWS-MDL-000": "info"}


def test_keras_archive_appended_to_a_pickle(tmp_path: Path) -> None:
    """Keras checks `zipfile.is_zipfile`, which reads the end of the file: a benign pickle in front hides
    nothing from it, so the scanner must read the archive too."""
    archive = keras_zip(tmp_path / "inner.zip", keras_model([LAMBDA_KERAS3])).read_bytes()
    (tmp_path / "inner.zip").unlink()
    (tmp_path / "model.keras").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4) + archive)
    assert zipfile.is_zipfile(tmp_path / "model.keras")
    assert by_file(tmp_path)["model.keras"].get("OWS-MDL-024") == "critical"


def load_compressed(module: Any, path: Path) -> object:
    with module.open(path) as fh:
        return pickle.load(fh)


def test_pickle_split_across_compressed_streams(tmp_path: Path) -> None:
    """`gzip.open`/`bz2.open`/`lzma.open` read concatenated streams as one: the import sits in the second."""
    marker = tmp_path / "ran"
    evil = f"(S'padding'\n0cos\nsystem\n(S'{touch(marker)}'\ntR.".encode()
    for suffix, module in (("gz", gzip), ("bz2", bz2), ("xz", lzma)):
        path = tmp_path / f"model.pkl.{suffix}"
        path.write_bytes(module.compress(evil[:12]) + module.compress(evil[12:]))
        assert runs(partial(load_compressed, module, path), marker), suffix
    found = by_file(tmp_path)
    for suffix in ("gz", "bz2", "xz"):
        assert found[f"model.pkl.{suffix}"].get("OWS-MDL-021") == "critical", suffix


def test_text_that_starts_like_a_pickle_is_not_a_model_file(tmp_path: Path) -> None:
    """NONE + STOP is a complete pickle: prose starting "N.B." must not become an unscannable pickle,
    while a protocol 0 pickle without imports under another name is still read as one."""
    (tmp_path / "notes.txt").write_text("N.B. check the licence first\n")
    (tmp_path / "ZFS.md").write_text("ZFS pools for the model cache\n")  # "ZF": joblib's old zlib magic
    (tmp_path / "state").write_bytes(pickle.dumps({"a": 1}, protocol=0))
    found = by_file(tmp_path)
    assert "notes.txt" not in found and "ZFS.md" not in found
    assert found["state"] == {"OWS-MDL-000": "info", "OWS-MDL-040": "low"}
