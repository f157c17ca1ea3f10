"""bench/guard_spikee.py builds spikee-style injections as spikee's generator does (synthetic seeds here: the
real seed data is downloaded for the evaluation only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import guard_spikee


def seeds(root: Path, folder: str, **files: list[dict[str, str]]) -> None:
    d = root / "spikee" / "spikee" / "data" / "workspace" / "datasets" / folder
    d.mkdir(parents=True)
    for name, rows in files.items():
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_the_instruction_fills_the_jailbreak_which_goes_into_the_document(tmp_path: Path) -> None:
    seeds(
        tmp_path,
        "seeds-llm-mailbox",
        base_user_inputs=[
            {"id": "mail", "document": "Dear team, the meeting moves to Friday. Regards"},
            {"id": "direct", "document": "<P>", "placeholder": "<P>"},
        ],
        jailbreaks=[{"id": "j1", "text": "JB[<INSTRUCTION>]"}, {"id": "j2", "text": "ZU[<INSTRUCTION>]", "lang": "zu"}],
        instructions=[{"id": "i1", "instruction": "DO-X"}, {"id": "i2", "instruction": "ZU-X", "lang": "zu"}],
    )
    samples = guard_spikee.samples(tmp_path)
    benign = [s for s in samples if s.label == 0]
    attacks = [s for s in samples if s.label == 1]
    assert [s.text for s in benign] == ["Dear team, the meeting moves to Friday. Regards"]
    # languages matched: 2 pairs; the mail document at 3 positions, the direct one at its placeholder
    assert len(attacks) == 2 * 3 + 2
    texts = {s.text for s in attacks}
    assert "JB[DO-X]Dear team, the meeting moves to Friday. Regards" in texts
    assert "Dear team, the meeting moves to Friday. RegardsJB[DO-X]" in texts
    assert "Dear team, the meetingJB[DO-X] moves to Friday. Regards" in texts  # the whitespace nearest the half
    assert not any("ZU-X" in t and "JB[" in t for t in texts)
    by_text = {s.text: s.category for s in attacks}
    assert by_text["JB[DO-X]"] == "direct" and by_text["ZU[ZU-X]"] == "direct"
    assert by_text["ZU[ZU-X]Dear team, the meeting moves to Friday. Regards"] == "multilingual"
    assert by_text["JB[DO-X]Dear team, the meeting moves to Friday. Regards"] == "indirect_document"
    assert all(s.source == "spikee/seeds-llm-mailbox" for s in samples)


def test_no_spikee_no_samples(tmp_path: Path) -> None:
    assert guard_spikee.samples(tmp_path) == []
