"""Building libSSCardDriver.so and the gcc test program once per test session."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_library(outdir: Path) -> Path:
    from sbcard.national.build_native import build

    return build(outdir)


def build_caller(outdir: Path) -> Path:
    exe = outdir / "sscard_call"
    subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-o", str(exe),
                    str(HERE / "sscard_call.c"), "-ldl", "-lpthread"], check=True)
    return exe
