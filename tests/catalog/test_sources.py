"""The repository stands alone: every fact in the data files names its original public source, the model
cards the catalog relies on are cited in docs/sources.md, and nothing points at files outside the
repository (a collection of notes the project was started from, a shared folder, a build machine's paths).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from owstack.catalog.models import model_cards

ROOT = Path(__file__).resolve().parents[2]
DATA = sorted((ROOT / "src" / "owstack").glob("*/data/*.yaml"))
#: references to files outside the repository
OUTSIDE = re.compile(r"FACTS\.md|\.\./shared|/work/(main|shared|wt)\b|shared/(FACTS|STYLE|ARCHITECTURE)")


def texts() -> Iterator[Path]:
    yield ROOT / "README.md"
    for folder in ("docs", "src", "examples"):
        yield from (
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in {".md", ".py", ".yaml", ".j2", ".html", ".txt"}
        )


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in texts()
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []


def sourced(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, source) for every mapping in a data file that carries a `source`."""
    if isinstance(node, dict):
        if "source" in node:
            yield path, node["source"]
        for key, value in node.items():
            yield from sourced(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from sourced(value, f"{path}[{index}]")


@pytest.mark.parametrize("path", DATA, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_source_field_names_a_source(path: Path) -> None:
    entries = list(sourced(yaml.safe_load(path.read_text(encoding="utf-8"))))
    for where, source in entries:
        assert isinstance(source, str) and len(source.strip()) >= 4, f"{path.name}: {where}"
        assert not OUTSIDE.search(source), f"{path.name}: {where}: {source}"


def test_the_catalogs_model_cards_are_cited() -> None:
    sources = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    for card in model_cards():
        assert f"https://huggingface.co/{card.hf_repo}" in sources, card.id
        for variant in card.variants:
            assert variant.hf_repo.split("-NVFP4")[0].split("-eagle")[0] in sources, variant.hf_repo
