"""Issue #12, "one place for each fact": the constants it names are defined once, and a copy
written as a literal elsewhere in ``sbcard`` fails here.

Read from the source with ``ast``: docstrings and comments may say the value (they explain),
code may not spell it (it must import it). Codec vectors beside a codec are data about the
codec, listed below with their reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sbcard"

#: fact → (its one home, the literal forms a copy would take)
FACTS: dict[str, tuple[str, tuple[object, ...]]] = {
    "SM2 default user ID (GM/T 0009)": ("gmt.py", ("1234567812345678", b"1234567812345678")),
    "MOHRSS RID": ("card/filesystem.py", ("D156000005", b"\xd1\x56\x00\x00\x05")),
    "default vpcd port": ("sim/vpcd.py", (35963, 35964)),
}

#: (file, fact) where the literal is not a definition but data about something else.
ALLOWED: dict[tuple[str, str], str] = {
    ("card/codecs.py", "MOHRSS RID"): "a codec vector: the RID's bytes as hex (the codec test)",
}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _literals(path: Path) -> list[tuple[int, object]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    skip = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and id(node) not in skip
            and not isinstance(node.value, bool)]


def _is_copy(value: object, forms: tuple[object, ...]) -> bool:
    if isinstance(value, str):
        return any(isinstance(f, str) and value.upper() == f.upper() for f in forms)
    return any(type(value) is type(f) and value == f for f in forms)


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_the_fact_is_spelt_only_in_its_home(fact: str) -> None:
    home, forms = FACTS[fact]
    found, elsewhere = False, []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for line, value in _literals(path):
            if not _is_copy(value, forms):
                continue
            if rel == home:
                found = True
            elif (rel, fact) not in ALLOWED:
                elsewhere.append(f"sbcard/{rel}:{line}: {value!r}")
    assert found, f"{fact}: no longer defined in sbcard/{home}"
    assert elsewhere == [], f"{fact} spelt outside sbcard/{home}: import it instead"
