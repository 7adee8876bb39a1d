"""The ``sbcard`` pytest plugin (entry point ``pytest11``: installing sbcard enables it).

Fixtures: ``sim_card``, ``sim_card_factory``, ``pcscd_service``, ``pcscd_card``,
``persona_factory``, ``apdu_log``, ``sbcard_service`` (the local card service on a free port,
yielding its URL). Marker: ``sbcard_persona(base, **keywords)`` chooses the
persona of ``sim_card``/``pcscd_card`` (or ``@pytest.mark.parametrize("sim_card", [...],
indirect=True)``). Options: ``--sbcard-pcscd=auto|system|isolated`` (env ``SBCARD_PCSCD``)
and ``--sbcard-require-pcscd`` (env ``SBCARD_REQUIRE_PCSCD=1``), which turns "no pcscd"
skips into failures. Under pytest-xdist (``-n N``) ``auto`` gives each worker its own
private pcscd where the machine allows one, so workers serve cards side by side; otherwise
they share the machine's pcscd and take turns at the reader (``slot_lock``).
Guide: docs/test-engineers.md.

Imports of sbcard happen inside the fixtures, so the plugin costs nothing to projects that
have sbcard installed but do not use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

MODES = ("auto", "system", "isolated")
PCSCD_FIXTURES = frozenset({"pcscd_card", "pcscd_service"})

#: How many pytest configs have this plugin registered (``sbcard.testing.ensure_plugin``).
_ACTIVE = 0


@dataclass
class _PcscdState:
    resolved: bool = False
    service: Any = None
    error: str | None = None
    env_before: str | None = None
    env_changed: bool = False
    note: str = ""                   # why auto mode did not get what it tried first


_STATE = pytest.StashKey[_PcscdState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sbcard", "sbcard simulated cards and pcscd")
    group.addoption(
        "--sbcard-pcscd", choices=MODES, default=None, dest="sbcard_pcscd",
        help="pcscd for pcscd_card: auto (default: the machine's pcscd when it has the vpcd "
             "readers, else a private one), system, isolated (a private pcscd for the whole "
             "run). Env SBCARD_PCSCD.")
    group.addoption(
        "--sbcard-require-pcscd", action="store_true", default=False,
        dest="sbcard_require_pcscd",
        help="Fail, not skip, tests that need pcscd when none is usable "
             "(env SBCARD_REQUIRE_PCSCD=1).")


def pcscd_mode(config: pytest.Config) -> str:
    value = config.getoption("sbcard_pcscd", None) or os.environ.get("SBCARD_PCSCD") or "auto"
    if value not in MODES:
        raise pytest.UsageError(f"SBCARD_PCSCD={value!r}: use one of {', '.join(MODES)}")
    return value


def pcscd_required(config: pytest.Config) -> bool:
    return (bool(config.getoption("sbcard_require_pcscd", False))
            or os.environ.get("SBCARD_REQUIRE_PCSCD") == "1")


def pytest_configure(config: pytest.Config) -> None:
    global _ACTIVE
    _ACTIVE += 1
    config.addinivalue_line(
        "markers", "sbcard_persona(base='demo', **keywords): the persona of sim_card / "
                   "pcscd_card, built by persona_factory(base, **keywords)")
    config.addinivalue_line(
        "markers", "sbcard_service(psam='default', **settings): the sbcard_service fixture's "
                   "simulated PSAM persona (None: no PSAM, so −2201) and [service] settings")
    config.addinivalue_line(
        "markers", "pcscd: needs a pcscd with the vsmartcard vpcd driver (added by the sbcard "
                   "plugin to tests using pcscd_card or pcscd_service)")
    state = _PcscdState()
    config.stash[_STATE] = state
    if pcscd_mode(config) == "isolated":
        # Before any test runs: the whole process (and its subprocesses) use the private
        # pcscd, because libpcsclite fixes its socket name at its first call.
        _start_isolated(state)


def _start_for_xdist_worker(config: pytest.Config, state: _PcscdState) -> None:
    """In ``auto`` mode an xdist worker that will run pcscd tests gets a private pcscd,
    started after collection and before any test (so before any PC/SC call here)."""
    from sbcard.testing.pcscd import isolation_problem, worker_port, xdist_worker

    worker = xdist_worker()
    if worker is None or state.resolved or pcscd_mode(config) != "auto":
        return
    problem = isolation_problem()
    if problem is None:
        _start_isolated(state, worker_port(worker[0]))
    if state.service is None:  # share the machine's pcscd, one card at a time
        state.note = (f"no private pcscd for xdist worker gw{worker[0]} "
                      f"({problem or state.error}); sharing the machine's")
        state.resolved, state.error = False, None


def _start_isolated(state: _PcscdState, preferred_port: int | None = None) -> None:
    from sbcard.testing.pcscd import SOCKET_ENV, VPCD_PORT, PcscdUnavailable, isolated_service

    state.env_before = os.environ.get(SOCKET_ENV)
    try:
        state.service = isolated_service(set_env=True,
                                         preferred_port=preferred_port or VPCD_PORT)
    except PcscdUnavailable as exc:
        state.error = str(exc)
    state.env_changed = os.environ.get(SOCKET_ENV) != state.env_before
    state.resolved = True


def pytest_unconfigure(config: pytest.Config) -> None:
    global _ACTIVE
    _ACTIVE = max(0, _ACTIVE - 1)
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    if state.service is not None:
        state.service.stop()
    if state.env_changed:
        from sbcard.testing.pcscd import SOCKET_ENV

        if state.env_before is None:
            os.environ.pop(SOCKET_ENV, None)
        else:
            os.environ[SOCKET_ENV] = state.env_before


def pytest_report_header(config: pytest.Config) -> str:
    return (f"sbcard: pcscd mode {pcscd_mode(config)}"
            f"{', required' if pcscd_required(config) else ''}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_pcscd = False
    for item in items:
        if PCSCD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pcscd)
            needs_pcscd = True
    state = config.stash.get(_STATE, None)
    if needs_pcscd and state is not None and not config.getoption("collectonly", False):
        _start_for_xdist_worker(config, state)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        log = getattr(item, "funcargs", {}).get("apdu_log")
        if log is not None and len(log):
            report.sections.append(("sbcard APDU log (masked)", log.format()))
    return report


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def apdu_log() -> Any:
    """An ``ApduLog``: every exchange of the test's cards, masked like traces."""
    from sbcard.testing.apdu_log import ApduLog

    return ApduLog()


@pytest.fixture
def persona_factory(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``persona_factory(base="demo", **keywords) -> Persona``; ``.file(...)`` for the CLI."""
    from sbcard.testing.personas import PersonaFactory

    return PersonaFactory(lambda: tmp_path_factory.mktemp("personas"))


class _DumpFile(str):
    """A persona argument that names a session dump: the card replays it."""


def _dump_or(request: pytest.FixtureRequest, name: Any) -> Any:
    """``name`` as a ``_DumpFile`` when it is a dump (relative to the test file, else the
    current folder), else unchanged."""
    from pathlib import Path

    from sbcard.apdu.dump import is_dump_file

    if not isinstance(name, str | os.PathLike) or isinstance(name, _DumpFile):
        return name
    for candidate in (Path(request.path).parent / name, Path(name)):
        if candidate.is_file() and is_dump_file(candidate):
            return _DumpFile(candidate)
    return name


def _persona_for(request: pytest.FixtureRequest, factory: Any) -> Any:
    """The persona (or ``_DumpFile``) a card fixture is asked for: a parameter, the
    ``sbcard_persona`` marker, else demo. A dump file is accepted wherever a name is."""
    from sbcard.sim.persona import Persona

    param = getattr(request, "param", None)
    if param is not None:
        param = _dump_or(request, param)
        if isinstance(param, Persona | _DumpFile):
            return param
        if isinstance(param, str):
            return factory(param)
        if isinstance(param, dict):
            keywords = dict(param)
            return factory(keywords.pop("base", "demo"), **keywords)
        raise TypeError(f"{request.fixturename} parameter must be a persona name, a Persona "
                        f"or a dict of persona_factory keywords, not {type(param).__name__}")
    marker = request.node.get_closest_marker("sbcard_persona")
    if marker is not None:
        keywords = dict(marker.kwargs)
        base = _dump_or(request, marker.args[0] if marker.args else keywords.pop("base", "demo"))
        if isinstance(base, Persona | _DumpFile):
            if keywords:
                raise TypeError("sbcard_persona: keywords go with a persona name, not a "
                                "Persona or a dump file")
            return base
        return factory(base, **keywords)
    return factory("demo")


@pytest.fixture
def sim_card(request: pytest.FixtureRequest, apdu_log: Any,
             persona_factory: Any) -> Iterator[Any]:
    """A connected in-process ``SimulatedCard`` (persona: marker/param, default demo)."""
    from sbcard.testing.cards import SimulatedCard

    chosen = _persona_for(request, persona_factory)
    card = (SimulatedCard.from_dump(chosen, apdu_log) if isinstance(chosen, _DumpFile)
            else SimulatedCard(chosen, apdu_log))
    yield card
    card.close()


@pytest.fixture
def sim_card_factory(apdu_log: Any, persona_factory: Any) -> Iterator[Any]:
    """``sim_card_factory(persona="demo", **keywords) -> SimulatedCard``, for several cards."""
    from sbcard.sim.persona import Persona
    from sbcard.testing.cards import SimulatedCard

    made: list[Any] = []

    def make(persona: Any = "demo", **keywords: Any) -> Any:
        from sbcard.apdu.dump import is_dump_file

        if isinstance(persona, str | os.PathLike) and is_dump_file(persona):
            if keywords:
                raise TypeError("keywords go with a persona name, not a dump file")
            card = SimulatedCard.from_dump(persona, apdu_log)
            made.append(card)
            return card
        if isinstance(persona, Persona):
            if keywords:
                raise TypeError("keywords go with a persona name, not a Persona")
            chosen = persona
        else:
            chosen = persona_factory(persona, **keywords)
        card = SimulatedCard(chosen, apdu_log)
        made.append(card)
        return card

    yield make
    for card in made:
        card.close()


@pytest.fixture(scope="session")
def pcscd_service(request: pytest.FixtureRequest) -> Any:
    """The ``PcscdService`` cards are served into; skips (or fails) when there is none."""
    from sbcard.testing.pcscd import (
        PcscdUnavailable,
        isolation_problem,
        system_service,
    )

    config = request.config
    state = config.stash.get(_STATE, None)
    if state is None:
        state = config.stash[_STATE] = _PcscdState()
    required = pcscd_required(config)
    if not state.resolved:
        mode = pcscd_mode(config)
        try:
            if mode == "system":
                state.service = system_service(in_process_probe=True)
            elif mode == "isolated":
                _start_isolated(state)
            else:
                try:
                    state.service = system_service(in_process_probe=False)
                except PcscdUnavailable as system_problem:
                    problem = isolation_problem()
                    if problem is not None:
                        raise PcscdUnavailable(f"{system_problem}; and no private pcscd: "
                                               f"{problem}") from None
                    _start_isolated(state)
                    if state.error is not None:
                        state.error = f"{system_problem}; {state.error}"
        except PcscdUnavailable as exc:
            state.error = str(exc)
        state.resolved = True
    if state.service is not None and state.note and state.note not in state.service.note:
        state.service.note = f"{state.service.note}; {state.note}"
    if state.service is None:
        message = f"no pcscd for hardware-in-the-loop tests: {state.error}"
        if required:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    state.service.required = required
    return state.service


@pytest.fixture
def pcscd_card(request: pytest.FixtureRequest, pcscd_service: Any, apdu_log: Any,
               persona_factory: Any) -> Iterator[Any]:
    """A ``PcscdCard``: the simulated card served into pcscd (reader ``.reader``)."""
    from sbcard.testing.cards import PcscdCard

    card = PcscdCard(pcscd_service, _persona_for(request, persona_factory), apdu_log)
    card.insert()
    yield card
    if card.faults is not None:
        card.faults.clear()
    card.remove()


def _sim_spec(request: pytest.FixtureRequest, factory: Any) -> str:
    """A persona name or file for the driver's ``sim`` setting (marker/param as sim_card)."""
    param = getattr(request, "param", None)
    if isinstance(param, str):
        return param
    if isinstance(param, dict):
        keywords = dict(param)
        return str(factory.file(keywords.pop("base", "demo"), **keywords))
    marker = request.node.get_closest_marker("sbcard_persona")
    if marker is None:
        return "demo"
    keywords = dict(marker.kwargs)
    base = marker.args[0] if marker.args else keywords.pop("base", "demo")
    return str(factory.file(base, **keywords)) if keywords else str(base)


@pytest.fixture
def sbcard_service(request: pytest.FixtureRequest, persona_factory: Any) -> Iterator[str]:
    """``sbcard serve`` on a free 127.0.0.1 port over the simulated card and PSAM; yields
    its base URL (``/v1/card``, ``/ws/function``, ``/ws/decard``, ``/readcard/entry``, the
    counter page at ``/``). Persona: ``sbcard_persona`` marker or parameter, as sim_card;
    ``@pytest.mark.sbcard_service(psam=None)`` for no PSAM, ``psam="nork"`` for a PSAM
    without RKSSSE (−2203), other keywords are [service] settings."""
    from dataclasses import replace

    from sbcard.service.run import build_service, sim_driver_config
    from sbcard.testing.service import ServiceThread, service_config

    marker = request.node.get_closest_marker("sbcard_service")
    settings = dict(marker.kwargs) if marker is not None else {}
    psam = settings.pop("psam", "default")
    driver_config = sim_driver_config(_sim_spec(request, persona_factory))
    if psam is None:
        driver_config = replace(driver_config, key_source="none", psam=None)
    elif psam != "default":
        driver_config = replace(driver_config, psam=f"sim:{psam}")
    service = build_service(service_config(**settings), driver_config)
    thread = ServiceThread.around(service).start()
    yield thread.url
    thread.stop()
    service.driver.close()
