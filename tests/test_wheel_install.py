"""`pip install sbcard` as a user does it: a wheel built from the repository, installed in a
fresh virtualenv outside the checkout, personalises a simulated blank card.

The wheel is built by pip from a copy of the tracked files (no build litter in the
checkout), with the build backend pyproject.toml names. The fresh venv gets sbcard only from
the wheel; its third-party dependencies (pyscard, cryptography, gmssl, click) come from this
environment through a .pth line, so installing needs no package index (pyscard would
otherwise compile again).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.holders_factory import holder_rows, write_csv

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path, stdin: str | None = None, env=None):
    return subprocess.run([str(a) for a in args], cwd=cwd, input=stdin, text=True,
                          capture_output=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with sbcard installed from a freshly built wheel."""
    base = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split()
    src = base / "src"
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    dist = base / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps",
                 "-q", "-w", dist, src, cwd=base)
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("sbcard-*.whl"))
    venv = base / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                "--no-index", "-q", wheel, cwd=base)
    assert done.returncode == 0, done.stderr
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                   cwd=base).stdout.strip()
    (Path(purelib) / "sbcard-test-deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    return venv / "bin"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBCARD_", "PYTHON"))}
    env["LANG"] = "C.UTF-8"
    return env


def test_the_wheel_is_imported_from_the_fresh_venv(installed, tmp_path):
    out = _run(installed / "python", "-c", "import sbcard; print(sbcard.__file__)",
               cwd=tmp_path, env=_env())
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).is_relative_to(installed.parent)
    assert not Path(out.stdout.strip()).is_relative_to(REPO)


def test_shipped_recipes_are_package_data(installed, tmp_path):
    listed = _run(installed / "sbcard", "script", "list", cwd=tmp_path, env=_env())
    assert listed.returncode == 0, listed.stderr
    assert "read-basic-info.apdu" in listed.stdout and str(REPO) not in listed.stdout
    ran = _run(installed / "sbcard", "--sim", "script", "run", "read-basic-info",
               cwd=tmp_path, env=_env())
    assert ran.returncode == 0, ran.stderr
    assert "测试一" in ran.stdout


def test_the_installed_wheel_personalises_a_simulated_blank_card(installed, tmp_path):
    csv = write_csv(tmp_path / "holders.csv", holder_rows(2, pin=None))
    out = _run(installed / "sbcard", "--sim", "blank", "--keys", "test", "-q", "personalise",
               csv, "--initial-pin-stdin", cwd=tmp_path, stdin="135790\n", env=_env())
    assert out.returncode == 0, out.stderr
    assert "done 完成 2/2" in out.stdout
