"""Refresh the console's vendored browser libraries from npm: htmx and uPlot, with their licenses.

    python scripts/vendor_ui_assets.py            # npm ci in scripts/ui-vendor, then copy
    python scripts/vendor_ui_assets.py --no-npm   # copy from an existing scripts/ui-vendor/node_modules

The versions are pinned by scripts/ui-vendor/package.json and package-lock.json (change them there, run
`npm install` in that folder, then this script). The files land in src/owstack/ui/static/vendor/ with a
VERSIONS.json (package, version, source file, SHA-256): the console fetches nothing at run time, from
nowhere, and the wheel carries exactly these bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NPM_DIR = ROOT / "scripts" / "ui-vendor"
OUT = ROOT / "src" / "owstack" / "ui" / "static" / "vendor"
#: package -> [(file in the package, name in OUT)]
FILES = {
    "htmx.org": [("dist/htmx.min.js", "htmx.min.js"), ("LICENSE", "htmx.LICENSE.txt")],
    "uplot": [
        ("dist/uPlot.iife.min.js", "uplot.iife.min.js"),
        ("dist/uPlot.min.css", "uplot.min.css"),
        ("LICENSE", "uplot.LICENSE.txt"),
    ],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-npm", action="store_true", help="use the node_modules already there")
    args = parser.parse_args(argv)
    if not args.no_npm:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NPM_DIR, check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {}
    for package, files in FILES.items():
        source = NPM_DIR / "node_modules" / package
        version = json.loads((source / "package.json").read_text())["version"]
        entries = []
        for inside, name in files:
            shutil.copyfile(source / inside, OUT / name)
            digest = hashlib.sha256((OUT / name).read_bytes()).hexdigest()
            entries.append({"file": name, "from": f"{package}/{inside}", "sha256": digest})
        versions[package] = {"version": version, "npm": f"https://www.npmjs.com/package/{package}", "files": entries}
        print(f"{package} {version}: {', '.join(name for _, name in files)}")
    (OUT / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
