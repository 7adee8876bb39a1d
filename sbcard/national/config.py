"""The one configuration file of the national interface, shared with the local card service.

Found by the environment variable ``SBCARD_DRIVER_CONFIG``, else ``~/.config/sbcard/driver.toml``,
else ``/etc/sbcard/driver.toml``, else defaults. The CLI's environment variables override the
file in every face (Python, C library, service): ``SBCARD_SIM`` (a persona: the in-process
simulated card), ``SBCARD_READER`` (the reader for every iType), ``SBCARD_KEYS`` (key file or
``test``), ``SBCARD_PSAM``, ``SBCARD_HSM_COMMAND``, ``SBCARD_PIN_SOURCE``. Example::

    [readers]
    contact = "Virtual PCD 00 00"      # iType 1 (and 3/4 first or second)
    contactless = ""                   # iType 2; empty: the contact reader serves it too
    sim = ""                           # a persona name: the in-process simulated card

    [keys]
    source = "psam"                    # psam | keys | hsm | none
    psam = "Virtual PCD 00 01"         # PSAM reader, or "sim"
    keys = ""                          # key file (or "test")
    hsm_command = ""                   # program answering one request on stdin
    hsm_protocol = "national"          # national | json

    [terminal]
    terminal_number = ""               # 终端机编号; empty: read from the PSAM
    device_number = ""                 # 终端设备号

    [pin]
    source = "pinentry"                # console | pinentry | pinpad | fixed
    pinentry = "pinentry"              # program (GnuPG Assuan protocol)
    guard = true                       # refuse to spend the last PIN try

    [card]
    profile = ""                       # a card profile (mohrss-2.0+jiangsu); empty: the
                                       # overlay regions.toml gives the card's issuing region

    [output]
    # max_bytes = 1024                 # C library: a ceiling on every output buffer (NUL
                                       # included) for a program that allocates one size for
                                       # all; unset: each function's own size (iReadCard 20480)

    [log]
    file = ""                          # one line per call; PINs never, IDs masked
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sbcard.card.profiles import load_profile
from sbcard.errors import BadInputError

KEY_SOURCES = ("psam", "keys", "hsm", "none")
PIN_SOURCES = ("console", "pinentry", "pinpad", "fixed")
HSM_PROTOCOLS = ("national", "json")


@dataclass(frozen=True)
class DriverConfig:
    contact_reader: str | None = None        # iType 1; None: the default reader choice
    contactless_reader: str | None = None    # iType 2; None: same as contact
    sim: str | None = None                   # persona: in-process simulated card
    key_source: str = "none"
    psam: str | None = None
    keys: str | None = None
    hsm_command: str | None = None
    hsm_protocol: str = "national"
    terminal_number: str | None = None
    device_number: str = ""
    pin_source: str = "pinentry"
    pinentry: str = "pinentry"
    pin_guard: bool = True
    fixed_pin: str | None = None             # FixedPinSource (service kiosk mode, tests)
    #: ``[output] max_bytes``: a ceiling under the C library's per-function output sizes
    #: (``cabi.OUTPUT_SIZES``); None: those sizes alone.
    max_output: int | None = None
    log_file: str | None = None
    #: ``[card] profile``: the card profile every call uses (its regional files, key
    #: addresses, PSAM key map); None: the default profile with the overlay regions.toml
    #: gives the card's issuing region (chosen per card, written to the log).
    profile: str | None = None
    source: str = "defaults"                 # where this configuration came from

    def reader_for(self, itype: int) -> list[str | None]:
        """Readers to try for ``iType`` in order (1 contact, 2 contactless, 3/4 auto)."""
        contact = self.contact_reader
        contactless = self.contactless_reader or contact
        order = {1: [contact], 2: [contactless], 3: [contact, contactless],
                 4: [contactless, contact]}[itype]
        out: list[str | None] = []
        for r in order:
            if r not in out:
                out.append(r)
        return out


def config_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    named = environ.get("SBCARD_DRIVER_CONFIG")
    if named:
        return Path(named)
    home = environ.get("HOME")
    candidates = [Path(home) / ".config/sbcard/driver.toml"] if home else []
    candidates.append(Path("/etc/sbcard/driver.toml"))
    return next((p for p in candidates if p.is_file()), None)


def _section(data: dict[str, Any], name: str, origin: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise BadInputError(f"{origin}: [{name}] must be a table")
    return value


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise BadInputError(f"{where}: expected text")
    text = str(value).strip()
    return text or None


#: The driver's tables and their keys (docs/national-interface.md); ``[service]`` belongs to
#: the local service (``sbcard.service.config``), which checks it itself.
SECTIONS: dict[str, tuple[str, ...]] = {
    "readers": ("contact", "contactless", "sim"),
    "keys": ("source", "psam", "keys", "hsm_command", "hsm_protocol"),
    "terminal": ("terminal_number", "device_number"),
    "pin": ("source", "pinentry", "guard"),
    "output": ("max_bytes",),
    "log": ("file",),
    "card": ("profile",),
}


def _refuse_unknown(data: dict[str, Any], origin: str) -> None:
    """A misspelt or misplaced key is an error, never silently ignored: a ``sim`` outside
    ``[readers]`` would otherwise send the driver to a real reader."""
    for key in data:
        if key in SECTIONS or key == "service":
            continue
        home = [f"[{name}] {key}" for name, keys in SECTIONS.items() if key in keys]
        hint = f" (did you mean {' or '.join(home)}?)" if home else ""
        raise BadInputError(f"{origin}: unknown key {key!r} at the top level{hint}; the tables "
                            f"are {', '.join(f'[{n}]' for n in (*SECTIONS, 'service'))}")
    for name, keys in SECTIONS.items():
        table = data.get(name)
        if isinstance(table, dict):
            for key in table:
                if key not in keys:
                    raise BadInputError(f"{origin}: [{name}] has no key {key!r} (it has "
                                        f"{', '.join(keys)})")


def from_mapping(data: dict[str, Any], origin: str = "<config>") -> DriverConfig:
    _refuse_unknown(data, origin)
    readers = _section(data, "readers", origin)
    keys = _section(data, "keys", origin)
    terminal = _section(data, "terminal", origin)
    pin = _section(data, "pin", origin)
    output = _section(data, "output", origin)
    log = _section(data, "log", origin)
    card = _section(data, "card", origin)
    config = DriverConfig(
        contact_reader=_text(readers.get("contact"), f"{origin}: readers.contact"),
        contactless_reader=_text(readers.get("contactless"), f"{origin}: readers.contactless"),
        sim=_text(readers.get("sim"), f"{origin}: readers.sim"),
        key_source=_text(keys.get("source"), f"{origin}: keys.source") or "none",
        psam=_text(keys.get("psam"), f"{origin}: keys.psam"),
        keys=_text(keys.get("keys"), f"{origin}: keys.keys"),
        hsm_command=_text(keys.get("hsm_command"), f"{origin}: keys.hsm_command"),
        hsm_protocol=_text(keys.get("hsm_protocol"), f"{origin}: keys.hsm_protocol")
        or "national",
        terminal_number=_text(terminal.get("terminal_number"), f"{origin}: terminal"),
        device_number=_text(terminal.get("device_number"), f"{origin}: terminal") or "",
        pin_source=_text(pin.get("source"), f"{origin}: pin.source") or "pinentry",
        pinentry=_text(pin.get("pinentry"), f"{origin}: pin.pinentry") or "pinentry",
        pin_guard=bool(pin.get("guard", True)),
        max_output=None if output.get("max_bytes") is None else int(output["max_bytes"]),
        log_file=_text(log.get("file"), f"{origin}: log.file"),
        profile=_text(card.get("profile"), f"{origin}: card.profile"),
        source=origin,
    )
    return validate(config, origin)


def validate(config: DriverConfig, origin: str) -> DriverConfig:
    if config.key_source not in KEY_SOURCES:
        raise BadInputError(f"{origin}: keys.source is one of {', '.join(KEY_SOURCES)}")
    if config.pin_source not in PIN_SOURCES:
        raise BadInputError(f"{origin}: pin.source is one of {', '.join(PIN_SOURCES)}")
    if config.hsm_protocol not in HSM_PROTOCOLS:
        raise BadInputError(f"{origin}: keys.hsm_protocol is one of {', '.join(HSM_PROTOCOLS)}")
    if config.max_output is not None and not 256 <= config.max_output <= 65536:
        raise BadInputError(f"{origin}: output.max_bytes is 256 to 65536")
    if config.profile is not None:
        try:
            load_profile(config.profile)
        except BadInputError as exc:
            raise BadInputError(f"{origin}: card.profile: {exc}") from None
    need = {"psam": config.psam, "keys": config.keys, "hsm": config.hsm_command}
    if config.key_source in need and not need[config.key_source]:
        what = "hsm_command" if config.key_source == "hsm" else config.key_source
        raise BadInputError(f"{origin}: keys.source = {config.key_source!r} needs keys.{what}")
    return config


def apply_environment(config: DriverConfig, environ: Mapping[str, str]) -> DriverConfig:
    """The CLI's environment variables win over the file (one rule for every face)."""
    changes: dict[str, Any] = {}
    if environ.get("SBCARD_SIM"):
        changes["sim"] = environ["SBCARD_SIM"]
    if environ.get("SBCARD_READER"):
        changes["contact_reader"] = changes["contactless_reader"] = environ["SBCARD_READER"]
    for env, kind, attr in (("SBCARD_KEYS", "keys", "keys"), ("SBCARD_PSAM", "psam", "psam"),
                            ("SBCARD_HSM_COMMAND", "hsm", "hsm_command")):
        if environ.get(env):
            changes[attr] = environ[env]
            changes["key_source"] = kind
    if environ.get("SBCARD_HSM_PROTOCOL"):          # as `sbcard --hsm-protocol`
        changes["hsm_protocol"] = environ["SBCARD_HSM_PROTOCOL"]
    if environ.get("SBCARD_PIN_SOURCE"):
        changes["pin_source"] = environ["SBCARD_PIN_SOURCE"]
    if not changes:
        return config
    return validate(replace(config, **changes), "environment")


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file the driver and the local service share, read with one-line errors."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"{what} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{what} {path}: {exc}") from None


def load_config(path: str | None = None,
                environ: Mapping[str, str] = os.environ) -> DriverConfig:
    """The driver configuration: ``path``, else the standard places, then the environment."""
    found = Path(path) if path else config_path(environ)
    if found is None:
        config = DriverConfig()
    else:
        config = from_mapping(read_toml(found, "driver configuration"), str(found))
    return apply_environment(config, environ)


__all__ = ["DriverConfig", "config_path", "from_mapping", "load_config"]
