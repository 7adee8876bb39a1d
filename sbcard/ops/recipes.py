"""The APDU script recipes sbcard ships (``apdu_scripts/`` in the source tree).

An installed wheel carries them as package data in ``sbcard/recipes/`` (setup.py copies them
at build time), so ``sbcard script run read-basic-info`` and ``sbcard personalise`` find
them without the source tree. In a source checkout the repository's ``apdu_scripts/`` is
used directly, so an edited recipe takes effect without reinstalling.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sbcard.errors import BadInputError

SUFFIXES = (".apdu", ".script")
#: The source tree's folder (absent in an installed wheel).
SOURCE_DIR = Path(__file__).resolve().parents[2] / "apdu_scripts"


def shipped_dirs() -> list[Path]:
    """Where shipped recipes are: the installed package data, else the source tree's."""
    out = []
    packaged = Path(str(resources.files("sbcard").joinpath("recipes")))
    if packaged.is_dir():
        out.append(packaged)
    if SOURCE_DIR.is_dir():
        out.append(SOURCE_DIR)
    return out


def shipped_recipes() -> list[str]:
    names = {p.name for d in shipped_dirs() for p in d.iterdir() if p.suffix in SUFFIXES}
    return sorted(names)


def find_recipe(name: str, *, local: Path | None = None) -> Path:
    """A script by path; else a shipped recipe by name (``read-basic-info[.apdu]``).

    ``local`` (e.g. ``./apdu_scripts``) is searched before the shipped ones, so a bureau's
    own copy of a recipe wins.
    """
    if local is not None and (local / name).is_file():
        return local / name
    path = Path(name)
    if path.is_file():
        return path
    if path.parent != Path("."):
        raise BadInputError(f"script {name}: no such file")
    candidates = [name] + [name + s for s in SUFFIXES if not name.endswith(s)]
    for folder in ([local] if local is not None else []) + shipped_dirs():
        for candidate in candidates:
            if (folder / candidate).is_file():
                return folder / candidate
    raise BadInputError(f"script {name}: no such file, nor a shipped recipe (shipped: "
                        f"{', '.join(shipped_recipes()) or 'none found'})")
