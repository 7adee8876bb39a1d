"""Fixtures shared by sbcard's own tests (the public ones come from the sbcard plugin)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def openssl() -> str:
    """The openssl command, when it has SM2 (interop tests skip without it)."""
    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("no openssl binary on PATH")
    probe = subprocess.run([exe, "genpkey", "-algorithm", "SM2"], capture_output=True, check=False)
    if probe.returncode != 0 or b"PRIVATE KEY" not in probe.stdout:
        pytest.skip("this openssl binary has no SM2 support")
    return exe


@pytest.fixture(autouse=True)
def _messages_in_both_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests match English and Chinese message text whatever the machine's locale is."""
    monkeypatch.setenv("SBCARD_LANG", "both")
