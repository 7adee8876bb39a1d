"""sbcard's benchmarks (``python bench/run_all.py``); shared helpers below."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_bytecode() -> None:
    """Start-up figures are for an installed sbcard: pip writes bytecode at install, so do the
    same before timing a start (a PYTHONDONTWRITEBYTECODE environment would otherwise compile
    every module at every start, ~100 ms, and a module edited since the last compile alone
    costs 10-20 ms)."""
    for tree in (ROOT / "sbcard", Path(sysconfig.get_paths()["purelib"])):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)],
                       capture_output=True, check=False)
