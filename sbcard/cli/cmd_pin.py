"""``sbcard verify pin|card``, ``sbcard pin status|change|reload|unblock`` (密码).

PINs come from a hidden prompt, or one per line on stdin with ``--pin-stdin`` — never from
the command line, where they would land in shell history and process lists.
"""

from __future__ import annotations

import sys

import click

from sbcard import messages as msg
from sbcard.cli.common import echo_json, state
from sbcard.errors import BadInputError, ExitCode

PIN_STDIN_HELP = "Read PINs from stdin, one per line, instead of hidden prompts."
FORCE_HELP = "Go ahead even with one PIN try left (a wrong PIN then blocks the card)."


class PinReader:
    """Hidden prompts, or lines from stdin; PINs exist only as ``Pin`` objects."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin
        # One stream object for every line: a fresh wrapper per call would lose what the
        # previous one buffered.
        self._stream = sys.stdin if from_stdin else None

    def one(self, label: str):
        from sbcard.ops.pin import Pin

        if self._stream is not None:            # --pin-stdin
            line = self._stream.readline()
            if not line:
                raise BadInputError(f"--pin-stdin: no line for {label}")
            text = line.strip()
        elif not sys.stdin.isatty():
            # a hidden prompt on a pipe would warn (GetPassWarning) and echo the PIN
            raise BadInputError(msg.PIN_PIPED)
        else:
            text = click.prompt(label, hide_input=True, prompt_suffix=": ")
        return Pin(text)

    def new_twice(self, label: str = "new PIN 新密码"):
        import secrets

        first = self.one(label)
        second = self.one(f"{label} again 再次输入")
        if not secrets.compare_digest(first.digits, second.digits):
            raise BadInputError("the two entries of the new PIN differ")
        return first


def _tries_text(left: int | None) -> str:
    return "unknown 未知" if left is None else f"{left}"


@click.group()
def verify() -> None:
    """Check the PIN (密码校验) or that the card is genuine (卡片认证)."""


@verify.command("pin")
@click.option("--pin-stdin", is_flag=True, help=PIN_STDIN_HELP)
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def verify_pin_cmd(ctx: click.Context, pin_stdin: bool, force: bool, as_json: bool) -> int:
    """Check the cardholder's PIN, without risking the last try.

    \b
    First asks the card how many tries are left (this spends none); refuses when only one is
    left unless --force. Exit codes: 0 PIN correct, 6 wrong (tries left reported),
    7 blocked, 8 refused (one try left), 4 no card.
    """
    from sbcard.ops.pin import guard_tries, pin_status, select_ssse, verify_pin

    st = state(ctx)
    with st.session() as channel:
        select_ssse(channel)
        status = pin_status(channel)
        guard_tries(status, force=force, what="verifying")   # refuse before asking for a PIN
        if not as_json:
            st.info(st.text(msg.PIN_TRIES_LEFT, n=_tries_text(status.tries_left)))
        pin = PinReader(pin_stdin).one("PIN 密码")
        verify_pin(channel, pin, force=force, status=status)   # --json: error object
    if as_json:
        echo_json({"pin_ok": True})
    else:
        click.echo(st.text(msg.PIN_CORRECT))
    return ExitCode.OK


@verify.command("card")
@click.option("--sm2", is_flag=True,
              help="3.0 cards: the SM2 way. The card signs a fresh challenge in its PKI "
                   "application; its certificate must chain to a root in --trust.")
@click.option("--trust", metavar="FILE|test",
              help="With --sm2: PEM file of trusted SM2 root certificates; `test` = the "
                   "public TEST root of the simulated cards (test only).")
@click.option("--pki-pin", "pki_pin", is_flag=True,
              help="With --sm2: verify the PKI user PIN before the card signs (hidden "
                   "prompt); asked anyway when the profile says user_pin = \"required\".")
@click.option("--pki-pin-stdin", "pki_pin_stdin", is_flag=True,
              help="With --sm2: read the PKI user PIN from the first line of stdin.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def verify_card_cmd(ctx: click.Context, sm2: bool, trust: str | None, pki_pin: bool,
                    pki_pin_stdin: bool, as_json: bool) -> int:
    """Prove the card is genuine: INTERNAL AUTHENTICATE with its diversified IRK.

    Needs a key source (--keys, --psam or --hsm-command) holding the IRK (card key 00).
    Exit codes: 0 genuine, 9 the card's answer does not match (not genuine, or keys of
    another issuer), 4 no card.

    \b
    With --sm2 (third-generation cards, no key source needed): reads the signature
    certificate of the PKI application (PKI.社会保障), checks it against --trust, and
    verifies the card's SM2 signature over a fresh challenge. The authentication command
    is not public; the profile mohrss-3.0 states the assumed one (docs/sm2-authentication.md).
    Exit 9 also for an expired, untrusted or malformed certificate. A card whose PKI
    application wants its user PIN answers 6982: reported as "PKI PIN needed" (exit 5);
    give it with --pki-pin or --pki-pin-stdin.
    """
    if sm2 or trust is not None:
        return _verify_card_sm2(ctx, sm2, trust, as_json, pki_pin or pki_pin_stdin,
                                pki_pin_stdin)
    if pki_pin or pki_pin_stdin:
        raise click.UsageError("--pki-pin goes with --sm2")
    from sbcard.ops.auth import internal_authenticate
    from sbcard.ops.read import read_context

    st = state(ctx)
    with st.key_source() as keys, st.session() as channel:
        if keys is None:
            raise click.UsageError("verify card needs a key source: --keys, --psam or "
                                   "--hsm-command")
        ctx_ = read_context(channel)
        internal_authenticate(channel, keys, ctx_)
    if as_json:
        echo_json({"genuine": True, "method": "internal-authenticate", "key_source": keys.name})
    else:
        click.echo(f"genuine card 真卡: internal authentication matches {keys.name}")
    return ExitCode.OK


def _verify_card_sm2(ctx: click.Context, sm2: bool, trust: str | None, as_json: bool,
                     want_pin: bool = False, pin_stdin: bool = False) -> int:
    from sbcard.card.profiles import PKI_GENERATION, profile_for
    from sbcard.ops.sm2auth import (
        TEST_TRUST,
        Sm2AuthConfig,
        load_trust_roots,
        sm2_authenticate,
    )

    if not sm2:
        raise click.UsageError("--trust goes with --sm2")
    if trust is None:
        raise click.UsageError("--sm2 needs --trust FILE (PEM with the trusted SM2 root "
                               "certificates), or --trust test for simulated cards")
    roots = load_trust_roots(trust)                     # a bad file fails before the card
    if trust == TEST_TRUST:
        click.echo("WARNING: trusting the public TEST root: only simulated cards chain to it",
                   err=True)
    st = state(ctx)
    profile = profile_for(PKI_GENERATION)
    if st.sim is not None:              # a simulated card speaks its own profile's command
        from sbcard.sim.persona import load_persona

        persona_profile = load_persona(st.sim).profile
        if persona_profile.sm2_auth is not None:
            profile = persona_profile
    user_pin = None
    if want_pin or Sm2AuthConfig.from_profile(profile).user_pin == "required":
        user_pin = PinReader(pin_stdin).one("PKI user PIN 证书密码").digits
    with st.session() as channel:
        result = sm2_authenticate(channel, profile, roots, user_pin=user_pin)
    if as_json:
        echo_json({"genuine": True, "method": "sm2", "trust": trust, **result.to_json()})
    else:
        cert = result.certificate
        click.echo("genuine card 真卡: SM2 signature over a fresh challenge verified")
        click.echo(f"  certificate 证书: {result.subject}")
        click.echo(f"  serial 序列号:    {result.serial}")
        click.echo(f"  issued by 签发者: {cert.issuer}")
        click.echo(f"  valid 有效期:     {cert.not_before:%Y-%m-%d} .. {cert.not_after:%Y-%m-%d}")
    return ExitCode.OK


@click.group()
def pin() -> None:
    """PIN management (密码管理): status, change, reload (重置), unblock (解锁)."""


@pin.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def pin_status_cmd(ctx: click.Context, as_json: bool) -> None:
    """How many PIN tries are left (spends none)."""
    from sbcard.ops.pin import pin_status, select_ssse

    st = state(ctx)
    with st.session() as channel:
        select_ssse(channel)
        status = pin_status(channel)
    if as_json:
        echo_json(status.to_json())
    elif status.blocked:
        click.echo(st.text(msg.PIN_BLOCKED))
    else:
        click.echo(st.text(msg.PIN_TRIES_LEFT, n=_tries_text(status.tries_left)))


@pin.command("change")
@click.option("--pin-stdin", is_flag=True, help=PIN_STDIN_HELP + " Order: old, new, new.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.option("--allow-trivial", is_flag=True, help="Accept a guessable new PIN (e.g. 123456).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def pin_change_cmd(ctx: click.Context, pin_stdin: bool, force: bool, allow_trivial: bool,
                   as_json: bool) -> None:
    """Change the PIN: the old one, then the new one twice.

    Refuses guessable new PINs (123456, 000000, 888888, runs like 234567) unless
    --allow-trivial. Exit codes: 0 changed, 6 old PIN wrong, 7 blocked, 8 refused.
    """
    from sbcard.ops.pin import change_pin

    reader = PinReader(pin_stdin)
    old = reader.one("current PIN 原密码")
    new = reader.new_twice()
    st = state(ctx)
    with st.session() as channel:
        change_pin(channel, old, new, force=force, allow_trivial=allow_trivial)
    if as_json:
        echo_json({"pin_changed": True})
    else:
        click.echo(st.text(msg.PIN_CHANGED))


@pin.command("reload")
@click.option("--pin-stdin", is_flag=True, help=PIN_STDIN_HELP + " Order: new, new.")
@click.option("--allow-trivial", is_flag=True, help="Accept a guessable new PIN.")
@click.pass_context
def pin_reload_cmd(ctx: click.Context, pin_stdin: bool, allow_trivial: bool) -> None:
    """Set a new PIN without the old one (重置密码), for a holder who forgot it.

    Needs a key source with PUK (card key 06) and STK (02): PUK external authentication,
    then the new PIN enciphered and MACed (secure messaging, spec §5.7).
    """
    from sbcard.ops.pin import reload_pin
    from sbcard.ops.read import read_context

    new = PinReader(pin_stdin).new_twice()
    st = state(ctx)
    with st.key_source() as keys, st.session() as channel:
        if keys is None:
            raise click.UsageError("pin reload needs a key source: --keys, --psam or --hsm-*")
        reload_pin(channel, keys, read_context(channel), new, allow_trivial=allow_trivial)
    click.echo("PIN reloaded 密码已重置")


@pin.command("unblock")
@click.pass_context
def pin_unblock_cmd(ctx: click.Context) -> None:
    """Reset the PIN try counter of a blocked PIN (解锁); the PIN itself stays.

    Needs a key source with PUK (card key 06) and STK (02).
    """
    from sbcard.ops.pin import unblock_pin
    from sbcard.ops.read import read_context

    st = state(ctx)
    with st.key_source() as keys, st.session() as channel:
        if keys is None:
            raise click.UsageError("pin unblock needs a key source: --keys, --psam or --hsm-*")
        unblock_pin(channel, keys, read_context(channel))
    click.echo("PIN unblocked 密码已解锁")
