"""Building libSSCardDriver.so and the gcc test program once per test session."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_library(outdir: Path) -> Path:
    from sbcard.national.build_native import build

    return build(outdir)


def build_caller(outdir: Path) -> Path:
    """The gcc test program, compiled against the SSCardDriver.h that ``build_library`` put
    in ``outdir``, so gcc checks every call's argument types against the header."""
    exe = outdir / "sscard_call"
    subprocess.run(["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(outdir),
                    "-o", str(exe), str(HERE / "sscard_call.c"), "-ldl", "-lpthread"],
                   check=True)
    return exe
