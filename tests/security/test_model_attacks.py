"""Model files an outsider would try next (issue 16): each malicious sample is first shown to run code
in the real loader (a payload that creates a marker file in the test's tmp folder), then shown to be
caught; each benign twin is shown to pass without a high finding."""

from __future__ import annotations

import datetime
import pickle
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from owstack.security.model_scan import scan_models
from owstack.security.model_scan.pickles import scan_pickles

FAILING = ("high", "critical")


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


def by_file(path: Path) -> dict[str, dict[str, str]]:
    """file -> rule -> highest severity"""
    ranks = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
    out: dict[str, dict[str, str]] = {}
    for f in scan_models(path):
        rules = out.setdefault(f.file, {})
        if ranks[f.severity] >= ranks[rules.get(f.rule, "info")]:
            rules[f.rule] = f.severity
    return out


def failing(rules: dict[str, str]) -> bool:
    return any(sev in FAILING for sev in rules.values())


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
