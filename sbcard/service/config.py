"""The service's settings: ports per dialect, the Origin allow-list, limits, PIN policy.

Read from the ``[service]`` table of the national interface's one configuration file
(``SBCARD_DRIVER_CONFIG``, else ``~/.config/sbcard/driver.toml``, else
``/etc/sbcard/driver.toml``; ``sbcard.national.config``), whose other tables configure the
card side (readers, key source, PIN source): a site configures the card once for the C
library, ``sbcard call`` and this service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sbcard.errors import BadInputError
from sbcard.national.config import config_path, read_toml

#: The only addresses the service binds to (a local service must never face the network).
LOOPBACK_HOSTS = ("127.0.0.1", "::1")
#: Host header names that mean "this machine" (anything else is DNS rebinding or a proxy).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``sbcard serve`` needs besides the driver. Port 0 disables a dialect
    (``api_port`` 0 means "a free port", used by tests)."""

    api_port: int = 12380          # sbcard's own API, card events and the counter page
    function_port: int = 12342     # function style ws://127.0.0.1:12342 ({"function": …})
    decard_port: int = 50150       # Decard style ws://127.0.0.1:50150 ({"func": …, "in": […]})
    rest_port: int = 8321          # REST style GET /readcard/entry?param=sicard
    bind: tuple[str, ...] = ("127.0.0.1",)
    allowed_origins: tuple[str, ...] = ()   # e.g. ("https://his.example.org",); "null" = file://
    extra_host_names: tuple[str, ...] = ()  # more names that resolve to loopback here
    max_message_bytes: int = 16 * 1024      # one WebSocket message or HTTP body
    max_connections: int = 64               # open WebSocket connections, all dialects together
    idle_timeout_s: float = 120.0           # a WebSocket or keep-alive silent this long is closed
    queue_timeout_s: float = 15.0           # waiting for the reader behind another operation
    kiosk_pin_from_page: bool = False       # accept a PIN in the request (see docs: risk)
    hsm_mode: str = "page"                  # "page": the page runs Step1/2; "bridge": the driver
    events_poll_s: float = 0.25             # how often card presence is checked for events

    def __post_init__(self) -> None:
        for host in self.bind:
            if host not in LOOPBACK_HOSTS:
                raise BadInputError(f"service bind {host!r}: only 127.0.0.1 and ::1 are allowed "
                                    "(a card service must not be reachable from the network)")
        if not self.idle_timeout_s > 0:
            raise BadInputError(f"service idle_timeout_s {self.idle_timeout_s!r}: seconds, "
                                "more than 0")
        if self.hsm_mode not in ("page", "bridge"):
            raise BadInputError(f"service hsm_mode {self.hsm_mode!r}: use 'page' or 'bridge'")
        for origin in self.allowed_origins:
            if origin != "null" and (origin.endswith("/") or "://" not in origin):
                raise BadInputError(f"service allowed_origins: {origin!r} is not an origin "
                                    "(scheme://host[:port], no path)")


_TUPLES = {"bind", "allowed_origins", "extra_host_names"}


def config_from_mapping(table: Mapping[str, Any],
                        base: ServiceConfig | None = None) -> ServiceConfig:
    """A ``ServiceConfig`` from a ``[service]`` table; unknown keys are an error (typos)."""
    known = {f.name: f for f in fields(ServiceConfig)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise BadInputError(f"[service] {key}: unknown setting "
                                f"(known: {', '.join(sorted(known))})")
        if name in _TUPLES:
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise BadInputError(f"[service] {key}: a list of strings")
            value = tuple(str(v) for v in value)
        values[name] = value
    return replace(base or ServiceConfig(), **values)


def load_service_config(path: str | Path | None = None,
                        environ: Mapping[str, str] = os.environ) -> ServiceConfig:
    """The ``[service]`` table of the driver configuration file (defaults without one)."""
    chosen = Path(path) if path is not None else config_path(environ)
    if chosen is None:
        return ServiceConfig()
    data = read_toml(chosen, "service configuration")
    table = data.get("service", {})
    if not isinstance(table, dict):
        raise BadInputError(f"{chosen}: [service] must be a table")
    return config_from_mapping(table)


@dataclass
class Limits:
    """Counters the security layer keeps (one per running service, never global)."""

    open_websockets: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def count_refusal(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1
