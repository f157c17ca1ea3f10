"""Model files whose structure lies (issue 16, second pass): GGUF headers whose counts and lengths run past
the file, templates stored under every key and value type a loader renders, tensors that reach past
their storage, TorchScript code, raw weights with a pickle suffix, joblib lz4. Each malicious sample has
a benign twin that must stay below `high`."""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from model_findings import by_file, failing

from owstack.security.model_scan import pickle_files

SSTI = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


# -- GGUF, written by hand (ggml docs/gguf.md) ----------------------------------------------------------


def gstr(raw: str | bytes, length: int | None = None) -> bytes:
    data = raw.encode() if isinstance(raw, str) else raw
    return struct.pack("<Q", len(data) if length is None else length) + data


def kv_string(key: str, value: str | bytes) -> bytes:
    return gstr(key) + struct.pack("<I", 8) + gstr(value)


def kv_strings(key: str, values: list[str]) -> bytes:
    return gstr(key) + struct.pack("<IIQ", 9, 8, len(values)) + b"".join(gstr(v) for v in values)


def gguf(
    kvs: list[bytes],
    tensors: list[tuple[str, list[int], int]] | None = None,
    data: bytes = b"",
    counts: tuple[int, int] | None = None,
) -> bytes:
    """GGUF v3; `tensors` as (name, dims, offset) of F32; `counts` overrides (tensor count, kv count)."""
    tensors = tensors or []
    n_tensors, n_kv = counts or (len(tensors), len(kvs))
    out = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + b"".join(kvs)
    for name, dims, offset in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", 0, offset)
    out += b"\0" * (-len(out) % 32)
    return out + data


def test_gguf_templates_under_every_key_and_value_type(tmp_path: Path) -> None:
    # llama-cpp-python renders every `tokenizer.chat_template.*` value as text, an array as its printed
    # list; invalid UTF-8 around the payload must not hide it
    samples = {
        "array.gguf": [
            kv_string("tokenizer.chat_template", CHATML),
            kv_strings("tokenizer.chat_template.x", ["a", SSTI]),
        ],
        "names.gguf": [kv_strings("tokenizer.chat_templates", ["tool_use", SSTI])],
        "latin1.gguf": [kv_string("tokenizer.chat_template", b"\xff\xfe" + SSTI.encode())],
        "nested.gguf": [
            gstr("tokenizer.chat_template.x")
            + struct.pack("<IIQ", 9, 9, 1)
            + struct.pack("<IQ", 8, 2)
            + gstr(SSTI)
            + gstr("a")
        ],
        "repeated.gguf": [kv_string("tokenizer.chat_template", SSTI), kv_string("tokenizer.chat_template", CHATML)],
    }
    for name, kvs in samples.items():
        (tmp_path / name).write_bytes(gguf(kvs, [("w", [8], 0)], b"\0" * 32))
    benign = [
        kv_string("tokenizer.chat_template", CHATML),
        kv_string("tokenizer.chat_template.tool_use", CHATML),
        kv_strings("tokenizer.chat_templates", ["tool_use"]),
    ]
    (tmp_path / "benign.gguf").write_bytes(gguf(benign, [("w", [8], 0)], b"\0" * 32))
    found = by_file(tmp_path)
    for name in samples:
        assert found[name].get("OWS-MDL-010") == "critical", name
    assert not failing(found["benign.gguf"])


def test_gguf_header_past_the_end_is_malformed_not_read(tmp_path: Path) -> None:
    template = [kv_string("tokenizer.chat_template", CHATML)]
    samples = {
        "kv_count.gguf": gguf(template, counts=(0, 2**62)),
        "tensor_count.gguf": gguf(template, counts=(2**62, 1)),
        "string.gguf": gguf([gstr("tokenizer.chat_template") + struct.pack("<I", 8) + gstr(b"{{ x }}", 2**60)]),
        "u8_array.gguf": gguf([gstr("k") + struct.pack("<IIQ", 9, 0, 2**40) + b"\0" * 16]),
        "str_array.gguf": gguf([gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**60) + gstr("a")]),
        "dims.gguf": gguf(template, [("w", [8] * 9, 0)], b"\0" * 32),
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "ok.gguf").write_bytes(gguf(template, [("w", [8], 0)], b"\0" * 32))
    found = by_file(tmp_path)
    for name in samples:
        assert found[name].get("OWS-MDL-050") == "high", name
    assert not failing(found["ok.gguf"])


def test_gguf_tensor_past_the_end_of_the_file(tmp_path: Path) -> None:
    template = [kv_string("tokenizer.chat_template", CHATML)]
    (tmp_path / "past.gguf").write_bytes(gguf(template, [("w", [8], 0), ("v", [1 << 20], 32)], b"\0" * 64))
    (tmp_path / "ok.gguf").write_bytes(gguf(template, [("w", [8], 0), ("v", [8], 32)], b"\0" * 64))
    found = by_file(tmp_path)
    assert found["past.gguf"].get("OWS-MDL-031") == "high"
    assert not failing(found["ok.gguf"])


# -- raw weights with a pickle suffix -------------------------------------------------------------------


def raw_weights(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float16).tobytes()


def test_raw_weights_with_a_pickle_suffix_are_not_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(8):  # OpenVINO IR: the graph in .xml, raw weights in .bin
        (tmp_path / f"openvino_model{seed}.bin").write_bytes(raw_weights(4096, seed))
        (tmp_path / f"openvino_model{seed}.xml").write_text("<net/>")
    (tmp_path / "large.bin").write_bytes(raw_weights(1 << 20, 99))  # larger than the file limit set below
    monkeypatch.setattr(pickle_files, "MAX_FILE_BYTES", 1 << 20)
    # twins: named as a PyTorch checkpoint, a real pickle named .bin, one that imports, then breaks
    (tmp_path / "pytorch_model.bin").write_bytes(raw_weights(4096, 0))
    (tmp_path / "evil.bin").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    (tmp_path / "broken.bin").write_bytes(b"cos\nsystem\n\xff\xff")
    found = by_file(tmp_path)
    for seed in range(8):
        assert found[f"openvino_model{seed}.bin"] == {"OWS-MDL-000": "info", "OWS-MDL-051": "low"}, seed
    assert found["large.bin"] == {"OWS-MDL-000": "info", "OWS-MDL-051": "low"}
    assert found["pytorch_model.bin"].get("OWS-MDL-050") == "high"
    assert found["evil.bin"].get("OWS-MDL-021") == "critical"
    assert found["broken.bin"].get("OWS-MDL-021") == "critical"


def v7_tar(members: dict[str, bytes]) -> bytes:
    """A pre-POSIX tar (no "ustar" magic), which `tarfile` and so torch's `legacy_load` still open."""
    out = b""
    for name, data in members.items():
        header = bytearray(512)
        header[0 : len(name)] = name.encode()
        header[100:108] = b"0000644\0"
        header[124:136] = b"%011o\0" % len(data)
        header[148:156] = b" " * 8
        header[156:157] = b"0"
        header[148:156] = b"%06o\0 " % sum(header)
        out += bytes(header) + data + b"\0" * (-len(data) % 512)
    return out + b"\0" * 1024


def test_pre_posix_tar_torch_file_without_a_suffix(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    payload = f"touch {marker}"
    evil = b"\x80\x02cposix\nsystem\nX" + len(payload).to_bytes(4, "little") + payload.encode() + b"\x85R."
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001}, 2),
        "pickle": evil,
        "storages": pickle.dumps(0, 2) + pickle.dumps([], 2),
        "tensors": pickle.dumps(0, 2),
    }
    (tmp_path / "weights").write_bytes(v7_tar(members))
    marker.unlink(missing_ok=True)
    assert torch.load(tmp_path / "weights", weights_only=False) == 0  # os.system's exit status
    assert marker.exists()  # torch.load opened the tar and unpickled its member
    (tmp_path / "notes").write_bytes(b"plain text " * 100)
    found = by_file(tmp_path)
    assert found["weights"].get("OWS-MDL-021") == "critical"
    assert "notes" not in found


# -- tensors past their storage ------------------------------------------------------------------------


def ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"


def tensor_pickle(offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> bytes:
    """`{"w": _rebuild_tensor_v2(<storage '0' of `numel` floats>, offset, size, stride, False, OrderedDict())}`,
    as torch.save writes it (protocol 2)."""
    pid = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
    pid += b"J" + struct.pack("<i", numel) + b"tQ"
    args = pid + b"J" + struct.pack("<i", offset) + ints(size) + ints(stride) + b"\x89ccollections\nOrderedDict\n)R"
    return b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(" + args + b"tRs."


def torch_zip(path: Path, data_pkl: bytes, record: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", record)
        zf.writestr("archive/version", "3\n")
    return path


def test_tensor_views_past_their_storage(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    record = struct.pack("<4f", 1, 2, 3, 4)
    bad = {
        "offset.pt": tensor_pickle(2, (4,), (1,), 4),
        "stride.pt": tensor_pickle(0, (2,), (1000,), 4),
        "negative.pt": tensor_pickle(-1, (2,), (1,), 4),
        "declared.pt": tensor_pickle(0, (100,), (1,), 100),  # the storage claims 400 bytes, the record has 16
    }
    for name, data in bad.items():
        torch_zip(tmp_path / name, data, record)
        with pytest.raises(RuntimeError):  # torch 2.x checks the bounds; loaders without the check read past them
            torch.load(tmp_path / name, weights_only=True)
    torch_zip(tmp_path / "view.pt", tensor_pickle(1, (3,), (1,), 4), record)
    torch_zip(tmp_path / "transposed.pt", tensor_pickle(0, (2, 2), (1, 2), 4), record)
    assert torch.load(tmp_path / "view.pt", weights_only=True)["w"].tolist() == [2, 3, 4]
    assert torch.load(tmp_path / "transposed.pt", weights_only=True)["w"].tolist() == [[1, 3], [2, 4]]
    found = by_file(tmp_path)
    for name in bad:
        assert found[name].get("OWS-MDL-031") == "high", name
    assert found["view.pt"] == {"OWS-MDL-000": "info", "OWS-MDL-040": "low"}
    assert found["transposed.pt"] == {"OWS-MDL-000": "info", "OWS-MDL-040": "low"}


# -- TorchScript code ----------------------------------------------------------------------------------


def rewrite_code(path: Path, out: Path, old: str, new: str) -> Path:
    """A copy of a TorchScript archive whose code/ files have `old` replaced by `new` (as an attacker edits them)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".py"):
                data = data.replace(old.encode(), new.encode())
            dst.writestr(info.filename, data)
    return out


def test_torchscript_code_that_touches_files(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker, made, scanned = tmp_path / "ran", tmp_path / "made", tmp_path / "scanned"
    made.mkdir()
    scanned.mkdir()

    class Saver(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.ones(2)

        @torch.jit.export
        def __getstate__(self) -> tuple[torch.Tensor, bool]:
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
            self.w = state[0]
            self.training = state[1]
            torch.ops.aten.save(self.w, "MARKER")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.w

    torch.jit.save(torch.jit.script(Saver()), made / "saver.pt")
    call = 'torch.save(w, "MARKER")'
    variants = {  # spellings torch.jit.load resolves to the same operators (torch 2.13)
        "saver.pt": f'torch.save(w, "{marker}")',
        "ops.pt": f'ops.aten.save(w, "{marker}")',
        "getattr.pt": f'getattr(torch, "save")(w, "{marker}")',
        "alias.pt": f't = torch\n    t.save(w, "{marker}")',
        "from_file.pt": 'w0 = torch.from_file("/etc/passwd", False, 4, dtype=0)',
    }
    for name, new in variants.items():
        rewrite_code(made / "saver.pt", scanned / name, call, new)
    for name in ("saver.pt", "alias.pt"):
        marker.unlink(missing_ok=True)
        torch.jit.load(scanned / name)
        assert marker.exists(), name  # written by torch.jit.load itself, from __setstate__

    class Plain(torch.nn.Module):
        """Benign twin: the word "save" in a string and an attribute name that merely contains it."""

        def __init__(self) -> None:
            super().__init__()
            self.saved_scale = 2.0

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
            return torch.relu(x) * self.saved_scale, "torch.save(x)"

    torch.jit.save(torch.jit.script(Plain()), scanned / "plain.pt")
    with zipfile.ZipFile(scanned / "project.zip", "w") as zf:  # a code/ folder torch.jit.load never reads
        zf.writestr("project/code/train.py", 'torch.save(model, "model.pt")\n')
        zf.writestr("project/meta.pkl", pickle.dumps({"epochs": 3}, 2))
    found = by_file(scanned)
    for name in variants:
        assert found[name].get("OWS-MDL-027") == "critical", name
    assert not failing(found["plain.pt"])
    assert not failing(found["project.zip"])


def test_lite_interpreter_bytecode_that_touches_files(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.jit.mobile import _load_for_lite_interpreter

    marker = tmp_path / "ran"

    class Saver(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.ops.aten.save(x, "MARKER")
            return x

    class Plain(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x)

    made, scanned = tmp_path / "made", tmp_path / "scanned"
    made.mkdir()
    scanned.mkdir()
    torch.jit.script(Saver())._save_for_lite_interpreter(str(made / "saver.ptl"))
    torch.jit.script(Plain())._save_for_lite_interpreter(str(scanned / "plain.ptl"))
    path = str(marker).encode()
    with zipfile.ZipFile(made / "saver.ptl") as src, zipfile.ZipFile(scanned / "saver.ptl", "w") as dst:
        for info in src.infolist():  # code/ made harmless; bytecode.pkl, which the lite interpreter runs, kept
            data = src.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".py"):
                data = data.replace(b'torch.save(x, "MARKER")', b"_0 = x")
            data = data.replace(b"X\x06\x00\x00\x00MARKER", b"X" + struct.pack("<I", len(path)) + path)
            dst.writestr(info.filename, data)
    _load_for_lite_interpreter(str(scanned / "saver.ptl"))(torch.zeros(2))
    assert marker.exists()
    found = by_file(scanned)
    assert found["saver.ptl"].get("OWS-MDL-027") == "critical"
    assert not failing(found["plain.ptl"])


# -- joblib lz4 ----------------------------------------------------------------------------------------

LZ4_FRAME = b"\x04\x22\x4d\x18\x64\x40\xa7"  # magic, FLG, BD, header checksum: what joblib's lz4 files start with


def test_joblib_lz4_is_never_clean(tmp_path: Path) -> None:
    # without the lz4 package the stream cannot be read; with it, this one is cut short: unscannable either way
    body = b"\x1c\x00\x00\x80" + pickle.dumps({"w": [1.0, 2.0]}, 2)[:28] + b"\x00\x00\x00\x00"
    (tmp_path / "model.joblib").write_bytes(LZ4_FRAME + body)
    (tmp_path / "cache").write_bytes(LZ4_FRAME + body)  # joblib.load does not care about the name
    found = by_file(tmp_path)
    for name in ("model.joblib", "cache"):
        assert found[name].get("OWS-MDL-050") == "high", name
        assert "OWS-MDL-040" not in found[name]


def test_joblib_lz4_is_read_when_lz4_is_installed(tmp_path: Path) -> None:
    lz4_frame = pytest.importorskip("lz4.frame")
    import joblib

    joblib.dump({"w": np.zeros(3)}, tmp_path / "ok.joblib", compress="lz4")
    (tmp_path / "evil.joblib").write_bytes(lz4_frame.compress(b"cos\nsystem\n(S'id'\ntR."))
    found = by_file(tmp_path)
    assert not failing(found["ok.joblib"])
    assert found["evil.joblib"].get("OWS-MDL-021") == "critical"
