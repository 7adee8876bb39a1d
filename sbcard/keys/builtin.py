"""The public TEST key file shipped with sbcard (``--keys test``).

It sits below the simulator and the operations (package data in ``sbcard/keys/material/``):
the simulated cards derive their symmetric keys from it. Nothing here is secret; nothing
diversified from it proves anything outside the simulator. The TEST SM2 root CA shipped
beside it is :mod:`sbcard.keys.builtin_ca` (kept apart so that a 2.0 card's path, which
needs these keys, loads no SM2 or X.509 code).
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable

from sbcard.keys.keyfile import KeyFile, RootKey

MATERIAL_DIR = "material"


def material() -> Traversable:
    """The folder of the shipped TEST material (package data)."""
    return resources.files("sbcard.keys").joinpath(MATERIAL_DIR)


def builtin_key_file(name: str = "test") -> KeyFile:
    """A shipped key file by name (``test``: the keys every simulated card derives from).
    A new KeyFile each call (a caller may choose its key version); the package file is
    parsed and checked once per process (every simulated card installs its keys from it)."""
    return KeyFile(list(_builtin_roots(name)), f"key file built-in {name} keys")


@functools.cache
def _builtin_roots(name: str) -> tuple[RootKey, ...]:
    path = material().joinpath(f"{name}-keys.toml")
    if not path.is_file():
        raise FileNotFoundError(f"no built-in key file {name!r}")
    return tuple(KeyFile.from_mapping(tomllib.loads(path.read_text("utf-8")),
                                      f"built-in {name} keys").roots)
