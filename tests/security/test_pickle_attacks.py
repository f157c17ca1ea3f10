"""Pickles that ran code in the real loaders while older scanners passed them. Every expectation about
what Python imports is checked against CPython's own unpickler (`Recorder.find_class` records instead of
importing), so the tests cannot drift from the real machine."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from owstack.security.model_scan import scan_models
from owstack.security.model_scan.pickles import scan_pickles


class Recorder(pickle.Unpickler):
    """CPython's unpickler with imports recorded and replaced by a harmless callable."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.imports: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> object:
        self.imports.append((module, name))
        return lambda *a, **k: ("called", module, name)


def python_imports(data: bytes) -> list[tuple[str, str]]:
    r = Recorder(data)
    try:
        r.load()
    except Exception:
        pass
    return r.imports


class Reducer:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def rules(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in scan_models(path):
        out.setdefault(f.file, set()).add(f.rule)
    return out


def critical_imports(data: bytes) -> set[str]:
    return {h.what for h in scan_pickles(data).hits if h.severity == "critical"}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol(protocol: int) -> None:
    data = pickle.dumps(Reducer(), protocol=protocol)
    assert python_imports(data) == [("posix", "system")]
    assert critical_imports(data) == {"posix.system"}


def test_protocol0_text_and_inst_opcodes() -> None:
    text = b"cos\nsystem\n(S'echo pwned'\ntR."
    inst = b"(S'echo pwned'\nios\nsystem\n."
    for data in (text, inst):
        assert python_imports(data) == [("os", "system")]
        assert critical_imports(data) == {"os.system"}
    legacy = b"c__builtin__\neval\n(S'1'\ntR."  # Python 2 names are mapped as Unpickler(fix_imports=True) does
    assert critical_imports(legacy) == {"builtins.eval"}


def test_stack_global_from_memo_and_stack_games() -> None:
    """A decoy import's strings are left where a "last two strings" scanner looks, while the real
    STACK_GLOBAL takes os/system from the memo after DUP, POP and POP_MARK."""
    data = (
        b"\x80\x04"
        + b"\x8c\x02os\x94"  # memo 0
        + b"\x8c\x06system\x94"  # memo 1
        + b"0" * 2  # POP POP
        + b"(\x8c\x0bcollections\x8c\x0bOrderedDict1"  # MARK 'collections' 'OrderedDict' POP_MARK
        + b"h\x00h\x012"  # GET 0, GET 1, DUP
        + b"0"  # POP (the duplicate)
        + b"\x93"  # STACK_GLOBAL -> os.system
        + b"\x8c\x0aecho pwned\x85R."
    )
    assert python_imports(data) == [("os", "system")]
    assert critical_imports(data) == {"os.system"}


def u(text: str) -> bytes:
    """SHORT_BINUNICODE"""
    return b"\x8c" + bytes([len(text)]) + text.encode()


def test_computed_and_dotted_imports() -> None:
    computed = b"\x80\x04" + u("_codecs") + u("encode") + b"\x93" + u("bf") + u("rot13") + b"\x86R" + u("system")
    computed += b"\x93)R."
    assert python_imports(computed)[0] == ("_codecs", "encode")
    assert "computed import" in critical_imports(computed)
    dotted = b"\x80\x04" + u("collections") + u("OrderedDict.__init__.__globals__") + b"\x93."
    assert python_imports(dotted) == [("collections", "OrderedDict.__init__.__globals__")]
    assert critical_imports(dotted) == {"collections.OrderedDict.__init__.__globals__"}
    ext = b"\x80\x02\x82\x01)R."
    assert any(h.what == "extension code 1" for h in scan_pickles(ext).hits)


def test_several_pickles_and_trailing_data(tmp_path: Path) -> None:
    benign = pickle.dumps({"w": [1.0, 2.0]}, protocol=2)
    (tmp_path / "two.pkl").write_bytes(benign + pickle.dumps(Reducer(), protocol=0))
    (tmp_path / "padded.pkl").write_bytes(benign + b"\x00" * 64)
    found = rules(tmp_path)
    assert "OWS-MDL-021" in found["two.pkl"]
    assert found["padded.pkl"] == {"OWS-MDL-000", "OWS-MDL-040"}


def test_legacy_torch_whose_second_pickle_is_protocol_0(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    report = scan_pickles(data)
    assert report.pickles == 5 and not report.hits and not report.errors
    first_end = report.segments[0][1]
    second_end = report.segments[1][1]
    evil = data[:first_end] + b"cos\nsystem\n(S'echo pwned'\ntR." + data[second_end:]
    (tmp_path / "legacy.bin").write_bytes(evil)
    (tmp_path / "ok.bin").write_bytes(data)
    found = rules(tmp_path)
    assert "OWS-MDL-021" in found["legacy.bin"]
    assert found["ok.bin"] == {"OWS-MDL-000", "OWS-MDL-040"}


def test_zip_bomb_is_unscannable_never_clean(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2) + b"\x00" * (64 << 20))
        zf.writestr("archive/version", "3\n")
    with zipfile.ZipFile(tmp_path / "hidden.pth", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
        zf.writestr("archive/extra", b"\x00" * (64 << 20))  # a loader still inflates it
    found = scan_models(tmp_path)
    for name in ("bomb.pt", "hidden.pth"):
        mine = [f for f in found if f.file == name]
        assert any(f.rule == "OWS-MDL-050" and "zip bomb" in f.message for f in mine), name
        assert not any(f.rule == "OWS-MDL-040" for f in mine)


def test_numpy_object_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "evil.npy", np.array([Reducer(), 1], dtype=object), allow_pickle=True)
    np.save(tmp_path / "plain.npy", np.arange(6, dtype=np.float32))
    np.savez(tmp_path / "evil.npz", a=np.arange(3), b=np.array([Reducer()], dtype=object))
    np.save(tmp_path / "objects.npy", np.array(["a", 1, None], dtype=object), allow_pickle=True)
    found = rules(tmp_path)
    assert "OWS-MDL-021" in found["evil.npy"]
    assert "OWS-MDL-021" in found["evil.npz"]
    assert found["plain.npy"] == {"OWS-MDL-000"}
    assert found["objects.npy"] == {"OWS-MDL-000", "OWS-MDL-041"}


def test_joblib_arrays_inline_and_compressed(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    payload = {"weights": np.arange(1000, dtype=np.float64), "names": np.array(["x", None], dtype=object)}
    joblib.dump(payload, tmp_path / "ok.joblib")
    joblib.dump({**payload, "z": Reducer()}, tmp_path / "evil.joblib")  # after the raw array bytes
    joblib.dump({**payload, "z": Reducer()}, tmp_path / "evil_z.joblib", compress=3)
    joblib.dump({**payload, "z": Reducer()}, tmp_path / "evil_gz.jbl", compress=("gzip", 3))
    joblib.dump({**payload, "z": Reducer()}, tmp_path / "evil_xz.joblib", compress=("xz", 3))
    joblib.dump({"w": np.array([Reducer()], dtype=object)}, tmp_path / "nested.joblib")
    found = rules(tmp_path)
    assert found["ok.joblib"] == {"OWS-MDL-000", "OWS-MDL-040"}
    for name in ("evil.joblib", "evil_z.joblib", "evil_gz.jbl", "evil_xz.joblib", "nested.joblib"):
        assert "OWS-MDL-021" in found[name], name


def test_compression_bomb_joblib(tmp_path: Path) -> None:
    import gzip

    inner = pickle.dumps({"a": 1}, protocol=2) + b"\x00" * (32 << 20)
    (tmp_path / "bomb.joblib").write_bytes(gzip.compress(gzip.compress(inner)))
    (tmp_path / "bomb2.joblib").write_bytes(gzip.compress(inner))
    found = scan_models(tmp_path)
    assert {f.file for f in found if f.rule == "OWS-MDL-050"} == {"bomb.joblib", "bomb2.joblib"}


def test_fickling_second_opinion_runs() -> None:
    from owstack.security.model_scan.pickle_files import second_opinion

    data = pickle.dumps(Reducer(), protocol=4)
    assert any("fickling" in m for m in second_opinion(data, [(0, len(data))]))
    benign = pickle.dumps({"a": [1, 2]}, protocol=4)
    assert second_opinion(benign, [(0, len(benign))]) == []
