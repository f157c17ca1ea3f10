"""Red-team pass on `scan --models` (2026-12-03): attacks that ran code in the real loaders (pickle.load,
numpy.load(allow_pickle=True), joblib.load) while the scanner rated the file clean or low. Every file is
generated here; the payload is `os.getcwd` (harmless, yet critical to the allowlist), and where the test
can afford it the real loader is run to show that it reaches the payload."""

from __future__ import annotations

import io
import lzma
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _model_files import GETCWD_CALL as GETCWD
from _model_files import keras_archive, sg, su, tar_of, verdicts

from owstack.security.model_scan import scan_models

# -- a tar archive whose first member's name is a pickle ------------------------------------------------


def tar_polyglot() -> bytes:
    members = {GETCWD.decode() + ".": b"x", "weights.pkl": pickle.dumps({"w": [1.0]})}
    return tar_of(members, tarfile.USTAR_FORMAT)


def test_tar_whose_header_is_a_pickle(tmp_path: Path) -> None:
    data = tar_polyglot()
    assert pickle.loads(data) == os.getcwd()  # pickle.load, joblib.load, numpy.load read byte 0: the name
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames()[1] == "weights.pkl"
    (tmp_path / "model.pkl").write_bytes(data)
    assert verdicts(tmp_path)["model.pkl"] == "critical"


def test_benign_tar_is_not_read_as_a_pickle(tmp_path: Path) -> None:
    members = {name: b"{}\n" for name in ("config.json", "checkpoint/weights.pkl", "cos")}
    members["checkpoint/weights.pkl"] = pickle.dumps([1, 2])
    (tmp_path / "model.tar").write_bytes(tar_of(members))
    assert verdicts(tmp_path)["model.tar"] == "low"


# -- a .npy under a name PyTorch uses for raw storages --------------------------------------------------


def object_npy() -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + GETCWD + b"."


@pytest.mark.parametrize("member", ["data/0", "archive/data/7"])
@pytest.mark.parametrize("file", ["w.npz", "w.bin", "w.pt"])
def test_npy_under_a_storage_name(tmp_path: Path, member: str, file: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        plain = io.BytesIO()
        np.save(plain, np.arange(4))
        archive.writestr("a.npy", plain.getvalue())
        archive.writestr(member, object_npy())
    (tmp_path / file).write_bytes(buf.getvalue())
    with np.load(tmp_path / file, allow_pickle=True) as npz:
        assert member in npz.files
        assert npz[member] == os.getcwd()  # numpy.load reads the member that torch would treat as raw bytes
    assert verdicts(tmp_path)[file] == "critical"


def test_raw_storages_stay_unread(tmp_path: Path) -> None:
    import torch

    torch.save({"w": torch.zeros(64), "b": torch.ones(3)}, tmp_path / "model.pt")
    assert verdicts(tmp_path)["model.pt"] == "low"


# -- joblib: a NumpyArrayWrapper made by a call the scanner cannot follow -------------------------------


def _dtype_u1() -> bytes:
    state = b"(K\x03" + su("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    return sg("numpy", "dtype") + su("u1") + b"\x89\x88\x87R" + state + b"b"


def joblib_desync() -> bytes:
    """Only allowlisted imports: `_rebuild_from_type_v2(NumpyArrayWrapper, NumpyArrayWrapper, args, state)`
    returns a wrapper, its BUILD makes joblib read 5 raw "array" bytes, which the scanner reads as a BINBYTES
    header that swallows the opcodes joblib runs next."""
    hidden = GETCWD
    array = b"B" + struct.pack("<I", len(hidden))
    cls = sg("joblib.numpy_pickle", "NumpyArrayWrapper")
    args = b"(" + sg("numpy", "ndarray") + b"K\x05\x85" + su("C") + _dtype_u1() + b"t"
    state = b"}" + su("numpy_array_alignment_bytes") + b"Ns"
    wrapper = sg("torch._tensor", "_rebuild_from_type_v2") + b"(" + cls + cls + args + state + b"tR"
    return b"\x80\x04" + wrapper + b"}b" + array + hidden + b"."


def test_joblib_wrapper_built_indirectly(tmp_path: Path) -> None:
    import joblib

    (tmp_path / "model.joblib").write_bytes(joblib_desync())
    assert joblib.load(tmp_path / "model.joblib") == os.getcwd()
    assert verdicts(tmp_path)["model.joblib"] == "critical"


def test_joblib_wrapper_through_copyreg_reconstructor_skips_its_array(tmp_path: Path) -> None:
    """Protocols 0 and 1 pickle the wrapper as `copyreg._reconstructor(cls, object, None)`: its array bytes
    are skipped as for a direct call, so an array whose bytes are not opcodes is no parse error."""
    from owstack.security.model_scan.pickles import scan_pickles

    cls = sg("joblib.numpy_pickle", "NumpyArrayWrapper")
    wrapper = sg("copyreg", "_reconstructor") + cls + sg("builtins", "list") + b"]\x87R"
    state = b"}(" + su("shape") + b"K\x03\x85" + su("dtype") + _dtype_u1() + su("numpy_array_alignment_bytes") + b"Nu"
    report = scan_pickles(b"\x80\x04" + wrapper + state + b"b" + b"\x00\xff\x00" + b".")
    assert report.errors == [] and report.pickles == 1


def test_joblib_ndarraywrapper_loads_a_file_outside(tmp_path: Path) -> None:
    def wrapper(filename: str) -> bytes:
        cls = sg("joblib.numpy_pickle", "NDArrayWrapper")
        return b"\x80\x04" + cls + b")\x81" + b"}(" + su("filename") + su(filename) + su("allow_mmap") + b"\x89ub."

    (tmp_path / "outside.pkl").write_bytes(wrapper("/tmp/cache/evil.npy"))
    (tmp_path / "climbs.pkl").write_bytes(wrapper("../../evil.npy"))
    (tmp_path / "sibling.pkl").write_bytes(wrapper("sibling_01.npy"))
    found = verdicts(tmp_path)
    assert found["outside.pkl"] == "critical" and found["climbs.pkl"] == "critical"
    assert found["sibling.pkl"] == "high"


# -- joblib's LZMA magic is "\x5d\x00": any dictionary size ---------------------------------------------


@pytest.mark.parametrize("name", ["model.joblib", "classifier", "weights.bin"])
def test_lzma_with_a_small_dictionary(tmp_path: Path, name: str) -> None:
    import joblib

    packer = lzma.LZMACompressor(format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 4096}])
    data = packer.compress(GETCWD + b".") + packer.flush()
    assert data.startswith(b"\x5d\x00\x10")
    (tmp_path / name).write_bytes(data)
    assert joblib.load(tmp_path / name) == os.getcwd()
    assert verdicts(tmp_path)[name] == "critical"


def test_joblib_zfile_header_is_21_or_22_bytes(tmp_path: Path) -> None:
    import zlib

    payload = GETCWD + b"."
    field = f"{len(payload):#x}".ljust(19).encode()
    (tmp_path / "new.pkl").write_bytes(b"ZF" + field + zlib.compress(payload))
    (tmp_path / "old.pkl").write_bytes(b"ZF" + field + b" " + zlib.compress(payload))
    found = {f.file: f for f in scan_models(tmp_path) if f.rule == "OWS-MDL-021"}
    assert set(found) == {"new.pkl", "old.pkl"}


# -- a pickle without a model suffix that fails after its call has run ------------------------------------


def test_unsuffixed_pickle_calling_an_unlisted_import_then_failing(tmp_path: Path) -> None:
    data = b"c_osx_support\n_read_output\n(S'true'\ntR\x00 trailing bytes"
    (tmp_path / "notes").write_bytes(data)
    (tmp_path / "README").write_text("copyright holders\nAll rights reserved.\n(see LICENSE)\n")
    found = verdicts(tmp_path)
    assert found.get("notes") == "high"
    assert "README" not in found


# -- Keras: a TorchModuleWrapper's pickled module, and non-modeling functions ------------------------------


class _Cwd:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (os.getcwd, ())


def keras_zip(path: Path, layer: dict[str, object]) -> None:
    keras_archive(path, [layer], version="3.15.1", registered_name="Functional")


def test_keras_torch_module_wrapper_pickle(tmp_path: Path) -> None:
    """Keras (torch backend) loads the module with torch.load(weights_only=False): arbitrary code with
    safe_mode=False, and with any safe_mode before Keras asked for it."""
    import base64

    import torch

    def wrapper(module: object) -> dict[str, object]:
        buf = io.BytesIO()
        torch.save(module, buf)
        blob = base64.b64encode(buf.getvalue()).decode()
        config = {"name": "torch_module_wrapper", "module": blob, "output_shape": [None, 2]}
        return {"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": config}

    keras_zip(tmp_path / "evil.keras", wrapper(_Cwd()))
    keras_zip(tmp_path / "plain.keras", wrapper(torch.nn.Linear(3, 2)))
    found = verdicts(tmp_path)
    assert found["evil.keras"] == "critical"
    assert found["plain.keras"] == "medium"  # a whole pickled nn.Module: library classes, reviewed


def test_keras_config_naming_a_non_modeling_function(tmp_path: Path) -> None:
    getter = {"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "get_file"}
    layer = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2, "activation": getter}}
    keras_zip(tmp_path / "get_file.keras", layer)
    plain = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}}
    keras_zip(tmp_path / "plain.keras", plain)
    found = verdicts(tmp_path)
    assert found["get_file.keras"] == "critical"
    assert "plain.keras" not in found


def test_joblib_dtype_flags_not_a_constant(tmp_path: Path) -> None:
    """`dtype('V1')` with flags `int("1")`: numpy marks it as an object dtype, so joblib unpickles the bytes
    after the wrapper; trusting flags 0, the scanner skipped them as 5 raw bytes and read on."""
    import joblib

    hidden = b"0" + GETCWD + b"."
    inner = b"\x8c\x09abcB" + struct.pack("<I", 1 + len(hidden)) + b"x" + hidden
    flags = sg("builtins", "int") + su("1") + b"\x85R"
    dtype = sg("numpy", "dtype") + su("V1") + b"\x89\x88\x87R" + b"(K\x03" + su("|") + b"NNNK\x01K\x01" + flags + b"tb"
    state = (
        b"}("
        + su("subclass")
        + sg("numpy", "ndarray")
        + su("shape")
        + b"K\x05\x85"
        + su("order")
        + su("C")
        + su("dtype")
        + dtype
        + su("numpy_array_alignment_bytes")
        + b"Nu"
    )
    data = b"\x80\x04" + sg("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b" + inner + b"0."
    (tmp_path / "model.joblib").write_bytes(data)
    with pytest.raises(AttributeError):  # joblib ran os.getcwd() as the "array", then choked on the str
        joblib.load(tmp_path / "model.joblib")
    from owstack.security.model_scan.pickles import scan_pickles

    assert scan_pickles(data).errors  # the bytes after the wrapper cannot be placed: unknown, never clean
    assert verdicts(tmp_path)["model.joblib"] in ("high", "critical")


def test_benign_joblib_object_array_is_not_high(tmp_path: Path) -> None:
    """An object array (string labels, as scikit-learn's `classes_`) is a nested pickle inside joblib's
    stream: fickling, which reads the stream straight through, called it overtly malicious; the pickle
    around it is now left out of fickling's opinion and the nested pickle judged on its own."""
    import joblib

    joblib.dump({"classes_": np.array(["cat", "dog"], dtype=object), "w": np.arange(4)}, tmp_path / "clf.joblib")
    assert verdicts(tmp_path)["clf.joblib"] == "low"


# -- a zip appended to another: PyTorch (miniz) and Python's zipfile read different members ------------------


def _torch_zip_pair(pickle_bytes: bytes, rename: str) -> tuple[bytes, bytes]:
    """(a checkpoint whose data.pkl is `pickle_bytes`, padded to the size of the benign one; the benign
    one, its folder renamed to `rename`): same layout, so the second archive's end record, whose offsets
    count from its own start, points at the first archive's central directory from the file's start."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    with zipfile.ZipFile(buf) as benign:
        members = [(info.filename, benign.read(info)) for info in benign.infolist()]
    pkl = next(data for name, data in members if name.endswith("data.pkl"))
    assert len(pickle_bytes) <= len(pkl)

    def build(data_pkl: bytes, folder: str) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for name, data in members:
                new_name = folder + name[name.index("/") :]
                archive.writestr(new_name, data_pkl if name.endswith("data.pkl") else data)
        return out.getvalue()

    first = build(pickle_bytes + b"\0" * (len(pkl) - len(pickle_bytes)), "archive")
    return first, build(pkl, rename)


@pytest.mark.parametrize("rename", ["archive", "weights"])
def test_zip_appended_to_a_zip(tmp_path: Path, rename: str) -> None:
    import torch

    first, second = _torch_zip_pair(GETCWD + b".", rename)
    (tmp_path / "model.pt").write_bytes(first + second)
    with zipfile.ZipFile(tmp_path / "model.pt") as archive:  # Python sees the benign second archive
        assert all(name.startswith(rename + "/") for name in archive.namelist())
        assert b"getcwd" not in archive.read(rename + "/data.pkl")
    assert torch.load(tmp_path / "model.pt", weights_only=False) == os.getcwd()  # torch reads the first
    assert verdicts(tmp_path)["model.pt"] == "critical"


def test_zip_appended_to_junk_that_pytorch_cannot_read_is_unknown(tmp_path: Path) -> None:
    first, second = _torch_zip_pair(GETCWD + b".", "archive")
    (tmp_path / "model.pt").write_bytes(first[: first.index(b"PK\x01\x02")] + second)
    assert verdicts(tmp_path)["model.pt"] == "high"
