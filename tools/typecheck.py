"""Run mypy over the installed layout (``nightclerk.workers`` = ``workers/`` ...).

mypy cannot follow setuptools' package-dir mapping of an editable install, so this builds a tree of
symlinks under ``var/typecheck/nightclerk/`` that mirrors the installed names and checks that, with
``bench/`` beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "producers", "workers", "exporters", "cli", "downstream")


def main() -> int:
    root = REPO / "var" / "typecheck" / "nightclerk"
    root.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(REPO / name, target_is_directory=True)
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")]
    for name in PACKAGES:
        command += ["-p", f"nightclerk.{name}"]
    bench = root.parent / "bench"  # the benchmark imports itself as ``bench.…``
    if not bench.is_symlink():
        bench.symlink_to(REPO / "bench", target_is_directory=True)
    command += ["-p", "bench"]
    env = {**os.environ, "MYPYPATH": str(root.parent)}
    return subprocess.call(command, cwd=root.parent, env=env)


if __name__ == "__main__":
    sys.exit(main())
