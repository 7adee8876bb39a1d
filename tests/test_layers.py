"""The import graph of ``sbcard`` has no arrow upward and no cycle (docs/architecture.md).

Read from the source with ``ast`` (nothing is imported), so the rule holds for every import
— at module level, inside functions, behind ``try`` — except ``if TYPE_CHECKING:`` blocks,
which name types and run nothing. A new top-level module or package must be placed in
``RANKS`` before it can be imported by anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sbcard"

#: Layer of each top-level part, lowest first. A module may import its own layer and lower
#: ones. transport → apdu → card → crypto → keys → ops → compose → national → service /
#: testing → cli.
RANKS: dict[str, int] = {
    "sbcard": 0,                 # the package itself (__version__)
    "sbcard.errors": 0,
    "sbcard.messages": 0,
    "sbcard.subproc": 0,
    "sbcard.gmt": 0,             # GM/T facts both card profiles and crypto name (SM2 default ID)
    "sbcard.transport": 1,
    "sbcard.apdu": 2,
    "sbcard.hexutil": 2,
    "sbcard.card": 3,
    "sbcard.crypto": 4,
    "sbcard.keys": 5,
    "sbcard.sim": 5,             # a card, not a layer: see SIDE_BRANCHES
    "sbcard.ops": 6,
    "sbcard.compose": 7,
    "sbcard.national": 8,
    "sbcard.service": 9,
    "sbcard.testing": 9,
    "sbcard.cli": 10,
    "sbcard.__main__": 10,
}

#: Parts that only the listed parts may import, whatever their rank: the simulator is a card
#: that operations never name (the choice "simulator or PC/SC" is made in compose).
SIDE_BRANCHES: dict[str, set[str]] = {
    "sbcard.sim": {"sbcard.sim", "sbcard.compose", "sbcard.testing", "sbcard.cli"},
}

#: Imports forbidden although the ranks allow them, with the reason.
NEVER: dict[tuple[str, str], str] = {}

#: Parts that may import only the listed parts, whatever the ranks allow (layers.json: the
#: one arrow out of Service goes to National): the local service talks to cards, and takes
#: the card model's facts (labels, PIN lengths, masking), through the national driver.
ONLY: dict[str, set[str]] = {
    "sbcard.service": {"sbcard", "sbcard.errors", "sbcard.national", "sbcard.service"},
}

#: Deliberate exceptions: a lazy re-export (PEP 562 module ``__getattr__``) that runs only when
#: the attribute is asked for, so integrators import every error from one module.
FACADES: dict[tuple[str, str], str] = {
    ("sbcard.errors", "sbcard.apdu.sw"): "sbcard.errors re-exports the card errors",
}

#: Where a function-level import of an sbcard module is a deliberate boundary: CLI commands
#: (so ``sbcard --help`` starts fast), the pytest plugin (loaded by every pytest run in the
#: environment), the C library's entry (an import error becomes a national return code) and
#: the optional SM2 backends. Anywhere else it papers over a cycle.
LAZY_BOUNDARIES = ("sbcard.cli", "sbcard.__main__", "sbcard.testing.plugin",
                   "sbcard.national.cabi", "sbcard.crypto.sm2",
                   # the composition step loads the simulator, PC/SC and the key sources
                   # only when they are chosen (a reader's read loads no simulator)
                   "sbcard.compose")

#: Single function-level imports elsewhere, each (importer, imported) with its reason: heavy
#: code kept off a path that never needs it, where a split module alone cannot do it (a
#: method the national interface names; an extension the simulator installs by profile).
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("sbcard.national.driver", "sbcard.national.pki"):
        "PKI_SignData/PKI_VerifySign load SM2, X.509 and asn1crypto only when called: every "
        "other national function's first call from C stays light (issue 13, "
        "tests/test_national_native.py)",
    ("sbcard.sim.persona", "sbcard.sim.pki_app"):
        "the simulated PKI application loads only for a card whose profile has [sm2_auth]: "
        "a simulated 2.0 card's first call stays light too",
    ("sbcard.sim.pki_app", "sbcard.sim.pki"):
        "the simulated card's SM2 key pair and certificate (SM2, X.509, asn1crypto) are made "
        "at the first PKI command or read of EF 0012/0018: a simulated 3.0 card's "
        "iReadCardBas loads none of it (issue 13, tests/test_national_native.py)",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _part(module: str) -> str:
    """The entry of RANKS a module belongs to (longest matching prefix)."""
    best = ""
    for key in RANKS:
        inside = module == key or (key != "sbcard" and module.startswith(key + "."))
        if inside and len(key) > len(best):
            best = key
    return best


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for n in ast.walk(node))
    return out


def _function_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            out.update(id(n) for n in ast.walk(node) if n is not node)
    return out


def imports_of(module: str) -> Iterator[tuple[str, int, bool]]:
    """(imported sbcard module, line, inside a function) for each runtime import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text("utf-8"), str(path))
    skip = _type_checking_nodes(tree)
    in_function = _function_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if name == "sbcard" or name.startswith("sbcard."):
                target = _resolve(name)
                if target is not None and target != module:
                    yield target, node.lineno, id(node) in in_function


GRAPH = {m: sorted(t for t in set(imports_of(m)) if (m, t[0]) not in FACADES)
         for m in MODULES}


def _problem(importer: str, imported: str) -> str | None:
    a, b = _part(importer), _part(imported)
    if not a or not b:
        return f"{importer if not a else imported} is in no layer (add it to RANKS)"
    branch = SIDE_BRANCHES.get(b)
    if branch is not None and a not in branch:
        return f"{b} may be imported only by {', '.join(sorted(branch))}"
    if (a, b) in NEVER:
        return NEVER[(a, b)]
    if a in ONLY and b not in ONLY[a]:
        return (f"{a} imports only {', '.join(sorted(ONLY[a] - {a}))}: the service talks to "
                "cards through the national driver")
    if RANKS[a] < RANKS[b]:
        return f"{a} (layer {RANKS[a]}) is below {b} (layer {RANKS[b]})"
    return None


def test_every_module_is_in_a_layer():
    assert [m for m in MODULES if not _part(m)] == []


def test_no_import_goes_up_a_layer():
    bad = []
    for importer, targets in GRAPH.items():
        for imported, line, _ in targets:
            why = _problem(importer, imported)
            if why:
                bad.append(f"{MODULES[importer].relative_to(PACKAGE.parent)}:{line} imports "
                           f"{imported}: {why}")
    assert bad == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle():
    edges = {m: {t for t, _, _ in targets} for m, targets in GRAPH.items()}
    assert _cycles(edges) == []


def test_lazy_imports_only_at_the_boundaries():
    bad = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t} inside a function"
           for m, targets in GRAPH.items() if not m.startswith(LAZY_BOUNDARIES)
           for t, line, lazy in targets if lazy and (m, t) not in LAZY_IMPORTS]
    assert bad == []


#: Where a module is imported by a name computed at run time (``importlib.import_module``):
#: the CLI's command table (``--help`` speed) and the ``sbcard.testing`` facade (PEP 562).
DYNAMIC_IMPORTS = ("sbcard.cli.main", "sbcard.testing")


def test_no_import_by_name_outside_the_boundaries():
    """``importlib.import_module("sbcard.…")`` hides an import from the graph above (and so
    from every rule): allowed only where a lazy boundary needs it."""
    bad = []
    for module, path in MODULES.items():
        if module in DYNAMIC_IMPORTS:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
                    and getattr(node.func, "attr", getattr(node.func, "id", ""))
                    in ("import_module", "__import__")):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert bad == []


@pytest.mark.parametrize(("importer", "imported", "fragment"), [
    ("sbcard.ops.read", "sbcard.sim.persona", "may be imported only by"),
    ("sbcard.sim.pki", "sbcard.ops.sm2auth", "is below"),
    ("sbcard.card.elements", "sbcard.ops.read", "is below"),
    ("sbcard.crypto.sm2", "sbcard.keys.base", "is below"),
    ("sbcard.ops.read", "sbcard.compose", "is below"),
    ("sbcard.ops.read", "sbcard.cli.main", "is below"),
    ("sbcard.service.app", "sbcard.ops.read", "national driver"),
    ("sbcard.service.adapter", "sbcard.card.elements", "national driver"),
    ("sbcard.service.logmask", "sbcard.apdu.redact", "national driver"),
    ("sbcard.service.app", "sbcard.compose", "national driver"),
    ("sbcard.newthing", "sbcard.errors", "in no layer"),
])
def test_the_rules_catch_upward_imports(importer, imported, fragment):
    why = _problem(importer, imported)
    assert why is not None and fragment in why


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
