"""Testing kit for sbcard users: a pytest plugin and the helpers behind its fixtures.

Installing sbcard registers the plugin ``sbcard`` (entry point ``pytest11`` →
``sbcard.testing.plugin``): the fixtures ``sim_card``, ``sim_card_factory``, ``pcscd_card``,
``pcscd_service``, ``persona_factory`` and ``apdu_log`` are then available in every test.
The classes they return are public here::

    from sbcard.testing import ApduLog, FaultInjector, SimulatedCard, PcscdCard, make_persona

Guide: docs/test-engineers.md.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

_EXPORTS = {
    "ApduLog": "sbcard.testing.apdu_log",
    "RecordingCard": "sbcard.testing.apdu_log",
    "Fault": "sbcard.testing.faults",
    "FaultInjector": "sbcard.testing.faults",
    "PersonaFactory": "sbcard.testing.personas",
    "make_persona": "sbcard.testing.personas",
    "persona_file": "sbcard.testing.personas",
    "persona_mapping": "sbcard.testing.personas",
    "SimulatedCard": "sbcard.testing.cards",
    "PcscdCard": "sbcard.testing.cards",
    "PcscdService": "sbcard.testing.pcscd",
    "PcscdUnavailable": "sbcard.testing.pcscd",
    "IsolatedPcscd": "sbcard.testing.pcscd",
}

__all__ = [*_EXPORTS, "ensure_plugin"]

PLUGIN = "sbcard.testing.plugin"


def ensure_plugin() -> list[str]:
    """For ``pytest_plugins = ensure_plugin()`` in a conftest or test module.

    Returns ``[]`` when pytest already loaded the plugin (through the entry point), else the
    plugin module, so the fixtures exist even in a checkout whose install predates the entry
    point, or under ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` — and never register twice.
    """
    plugin = sys.modules.get(PLUGIN)
    if plugin is not None and getattr(plugin, "_ACTIVE", 0) > 0:
        return []
    return [PLUGIN]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sbcard.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
