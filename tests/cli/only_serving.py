"""Run owstack as an install without the optional extras would: importing any of the modules named on the
command line fails as if the package were not installed.

    python only_serving.py torch,matplotlib serve --port 8123        # one command, like `owstack ...`
    python only_serving.py torch,matplotlib --batch '[["models"], ["plan", "--help"]]'
        -> prints {"codes": [0, 0], "loaded": [top-level modules imported]} as JSON
"""

from __future__ import annotations

import importlib.abc
import json
import runpy
import sys
from typing import Any

BLOCKED = frozenset(sys.argv.pop(1).split(","))


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed)", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())

if sys.argv[1:2] == ["--batch"]:
    from owstack.cli import app

    codes = []
    for argv in json.loads(sys.argv[2]):
        try:
            app(argv, prog_name="owstack")
        except SystemExit as exc:
            codes.append(exc.code if isinstance(exc.code, int) else 1)
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"codes": codes, "loaded": loaded}))
else:
    sys.argv[0] = "owstack"
    runpy.run_module("owstack", run_name="__main__", alter_sys=True)
