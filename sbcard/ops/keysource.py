"""Choosing the key source an operation authenticates with (key file, PSAM or HSM).

Exactly one may be given; none is fine for operations that need no key. ``test`` names the
repository's public test keys (they match the simulated cards) and is announced loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sbcard.card.profiles import CardProfile
from sbcard.errors import BadInputError
from sbcard.keys.base import KeySource
from sbcard.ops.session import SessionOptions


@dataclass(frozen=True)
class KeySourceOptions:
    keys: str | None = None            # key file path, or "test"
    psam: str | None = None            # PSAM reader (index/name/fragment), or "sim"
    hsm_command: str | None = None     # program answering JSON requests
    hsm_stdio: bool = False            # HSM step mode by hand over stderr/stdin
    #: How the PSAM's own link is traced and recorded (``trace``, ``wrap_link``), the way
    #: the user card's is: the PSAM is a second card session.
    psam_session: SessionOptions = field(default_factory=SessionOptions)
    #: Card key version (``--key-version``); None = the profile's ``key_version``, if any.
    key_version: int | None = None

    @property
    def given(self) -> list[str]:
        return [n for n, v in (("--keys", self.keys), ("--psam", self.psam),
                               ("--hsm-command", self.hsm_command),
                               ("--hsm-stdio", self.hsm_stdio)) if v]


def open_key_source(options: KeySourceOptions, profile: CardProfile | None = None,
                    warn: Callable[[str], None] | None = None) -> KeySource | None:
    """The key source ``options`` name, set to the chosen card key version."""
    source = _open_key_source(options, profile, warn)
    version = options.key_version
    if version is None and profile is not None and profile.extra.get("key_version") is not None:
        version = int(profile.extra["key_version"])
    if source is None or version is None:
        return source
    if not 0 <= version <= 0xFF:
        raise BadInputError(f"key version must be 0..255, got {version}")
    from sbcard.keys.keyfile import KeyFile

    if isinstance(source, KeyFile):          # the built-in test file is shared: a copy
        source = KeyFile(source.roots, source.name)
    source.key_version = version
    return source


def _open_key_source(options: KeySourceOptions, profile: CardProfile | None,
                     warn: Callable[[str], None] | None) -> KeySource | None:
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
        from dataclasses import replace

        if options.psam == "sim":
            return open_psam(replace(options.psam_session, sim="psam:default"))
        return open_psam(replace(options.psam_session, reader=options.psam))
    from sbcard.card.profiles import load_profile
    from sbcard.keys.hsm import HsmStepSource, command_exchange, stdio_exchange

    prof = profile or load_profile("mohrss-2.0")
    addresses = {int(k, 16): v for k, v in prof.extra.get("hsm_addresses", {}).items()}
    exchange = (command_exchange(options.hsm_command) if options.hsm_command
                else stdio_exchange())
    return HsmStepSource(exchange, addresses)


def _noop(_message: str) -> None:
    pass


def open_psam(options: SessionOptions, profile: CardProfile | str | None = None) -> KeySource:
    """A PSAM key source on ``options``' reader, or the simulated PSAM when ``options.sim``.

    ``options`` is a ``sbcard.ops.session.SessionOptions``; ``sim`` names a PSAM persona
    (``"default"`` or ``"psam:default"``, or a file). The usual stack (trace, T=0 help) is put
    on the link. The PSAM is checked at once (its terminal number is read), so a wrong reader
    fails here rather than in the middle of an authentication.
    """
    from sbcard.apdu.channel import ApduChannel
    from sbcard.errors import SbcardError
    from sbcard.keys.psam import DEFAULT_PROFILE, PsamKeySource
    from sbcard.ops.session import make_link, stack

    if options.sim is not None:
        from sbcard.sim.psam import load_psam_persona
        from sbcard.transport.simulated import SimulatedTransport

        persona = load_psam_persona(options.sim)
        link = SimulatedTransport(persona.build(), f"simulated PSAM: {persona.name}",
                                  protocol="T=0" if persona.t0_get_response else "T=1")
    else:
        link = make_link(options)
    bare = link                                      # the PC/SC link knows its reader
    if options.wrap_link is not None:
        link = options.wrap_link(link)
    transport = stack(link, options)
    transport.connect()
    source = PsamKeySource(ApduChannel(transport), profile or DEFAULT_PROFILE,
                           name=f"PSAM in {transport.description or 'reader'}",
                           reader=None if options.sim is not None else bare.description,
                           on_close=transport.disconnect)
    try:
        source.terminal_number  # noqa: B018 - the check that this is a PSAM
    except SbcardError:
        source.close()
        raise
    return source
