"""``sbcard --help`` stays light: it imports click and the CLI's own small modules, nothing
of the card stack (simulator, crypto, PC/SC, journal, service) and no other third-party
package. A check of *what* is imported, not of a timing (bench/bench_read.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys

#: sbcard packages that belong behind the command boundary (imported when a command runs).
HEAVY_SBCARD = ("sbcard.sim", "sbcard.crypto", "sbcard.ops", "sbcard.card", "sbcard.transport",
                "sbcard.apdu", "sbcard.keys", "sbcard.national", "sbcard.service",
                "sbcard.testing", "sbcard.compose", "sbcard.hexutil", "sbcard.subproc")

#: third-party packages named here so a failure says which one crept in.
HEAVY_THIRD_PARTY = ("cryptography", "smartcard", "asn1crypto", "aiohttp", "selenium",
                     "psycopg", "gmssl", "cffi", "starlette", "click_man")

_PROBE = """
import json, runpy, sys
sys.argv = ["sbcard", *ARGS]
try:
    runpy.run_module("sbcard", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\nMODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported_by(*args: str) -> tuple[str, set[str]]:
    """(stdout, modules in ``sys.modules``) after ``sbcard ARGS`` in a fresh interpreter."""
    probe = _PROBE.replace("ARGS", json.dumps(list(args)))
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    out, _, tail = run.stdout.rpartition("\nMODULES ")
    assert tail, f"the probe printed no module list: {run.stdout!r} {run.stderr!r}"
    answer = json.loads(tail)
    assert answer["code"] in (0, None), run.stderr
    return out, set(answer["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == h or m.startswith(h + ".") for h in HEAVY_SBCARD + HEAVY_THIRD_PARTY))


def third_party_in(modules: set[str]) -> set[str]:
    """Top-level packages that are neither the standard library, click nor sbcard."""
    tops = {m.split(".")[0] for m in modules}
    return {t for t in tops if t not in sys.stdlib_module_names and not t.startswith("_")
            and t not in {"click", "sbcard", "sitecustomize", "usercustomize"}
            and not t.startswith("__editable__")}


def test_help_imports_no_card_stack_and_no_other_package():
    out, modules = imported_by("--help")
    assert "personalise" in out and "read" in out          # the probe really ran --help
    assert "click" in modules and "sbcard.cli.main" in modules
    assert heavy_in(modules) == []
    assert third_party_in(modules) == set()


def test_the_probe_sees_a_heavy_import():
    """The check can fail: a command that runs does import the card stack."""
    _, modules = imported_by("--sim", "demo", "atr", "--json")
    assert "sbcard.sim" in heavy_in(modules)
