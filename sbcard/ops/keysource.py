"""Choosing the key source an operation authenticates with (key file, PSAM or HSM).

Exactly one may be given; none is fine for operations that need no key. ``test`` names the
repository's public test keys (they match the simulated cards) and is announced loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sbcard.card.profiles import CardProfile
from sbcard.errors import BadInputError
from sbcard.keys.base import KeySource


@dataclass(frozen=True)
class KeySourceOptions:
    keys: str | None = None            # key file path, or "test"
    psam: str | None = None            # PSAM reader (index/name/fragment), or "sim"
    hsm_command: str | None = None     # program answering JSON requests
    hsm_stdio: bool = False            # HSM step mode by hand over stderr/stdin

    @property
    def given(self) -> list[str]:
        return [n for n, v in (("--keys", self.keys), ("--psam", self.psam),
                               ("--hsm-command", self.hsm_command),
                               ("--hsm-stdio", self.hsm_stdio)) if v]


def open_key_source(options: KeySourceOptions, profile: CardProfile | None = None,
                    warn: Callable[[str], None] | None = None) -> KeySource | None:
    given = options.given
    if len(given) > 1:
        raise BadInputError(f"give one key source, not {' and '.join(given)}")
    if not given:
        return None
    if options.keys is not None:
        if options.keys == "test":
            from sbcard.sim.auth import builtin_key_file

            (warn or _noop)("WARNING: using the public TEST keys: only simulated and test "
                            "cards accept them")
            return builtin_key_file()
        from sbcard.keys.keyfile import KeyFile

        return KeyFile.load(options.keys, warn=warn)
    if options.psam is not None:
        from sbcard.keys.psam import open_psam
        from sbcard.ops.session import SessionOptions

        if options.psam == "sim":
            return open_psam(SessionOptions(sim="psam:default"))
        return open_psam(SessionOptions(reader=options.psam))
    from sbcard.card.profiles import load_profile
    from sbcard.keys.hsm import HsmStepSource, command_exchange, stdio_exchange

    prof = profile or load_profile("mohrss-2.0")
    addresses = {int(k, 16): v for k, v in prof.extra.get("hsm_addresses", {}).items()}
    exchange = (command_exchange(options.hsm_command) if options.hsm_command
                else stdio_exchange())
    return HsmStepSource(exchange, addresses)


def _noop(_message: str) -> None:
    pass
