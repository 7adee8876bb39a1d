"""Authentication flows between the terminal and the card, driven through a key source.

The card is driven here; cryptograms come from the ``KeySource`` (key file, PSAM or HSM).
Safety rule: EXTERNAL AUTHENTICATE spends one of the card key's tries when it fails, so before
it we check what can be checked for free — that the key source has the key, and (when it holds
the IRK) that the card's own INTERNAL AUTHENTICATE answer matches, which proves the keys belong
to this card's key family. Only then is a try put at risk.
"""

from __future__ import annotations

import secrets

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu, ResponseApdu
from sbcard.apdu.sw import SW, CardError
from sbcard.card.dfs import card_key_id
from sbcard.card.filesystem import KEY_IRK
from sbcard.crypto.symmetric import Algorithm
from sbcard.errors import MismatchError, RefusedError
from sbcard.hexutil import is_ascii_digits
from sbcard.keys.base import CardContext, KeySource


def context_from(atr: bytes, region: str | None, algorithm_id: int | None) -> CardContext:
    """The card facts diversification needs; refuses when the region code is unknown."""
    if not region or len(region) != 6 or not is_ascii_digits(region):
        raise RefusedError(
            "cannot derive card keys: the card's region code (卡的识别码) is missing or not "
            "6 digits"
        )
    algorithm = Algorithm.from_id(algorithm_id if algorithm_id is not None else 0x01)
    return CardContext(atr, region, algorithm)


def internal_authenticate(channel: ApduChannel, keys: KeySource, ctx: CardContext) -> None:
    """The card proves it holds the IRK of this key family; raises MismatchError if not."""
    r1, r2 = secrets.token_bytes(8), secrets.token_bytes(8)
    response = channel.send(cmds.internal_authenticate(r1, r2, key_version=keys.key_version))
    if response.sw == SW.KEY_NOT_FOUND and keys.key_version is not None:
        raise RefusedError(
            f"the card has no key version {keys.key_version} (6A88 to INTERNAL AUTHENTICATE): "
            "choose another --key-version; no authentication try was spent")
    if not response.ok:
        raise CardError.for_sw(response.sw, "INTERNAL AUTHENTICATE", response.data)
    answer = response.data
    expected = keys.internal_auth_expected(ctx, r1, r2)
    if not secrets.compare_digest(answer[:8], expected):
        raise MismatchError(
            f"internal authentication failed: the card's answer does not match {keys.name} "
            "(not a genuine card, or keys of another issuer/region)"
        )


def external_authenticate(channel: ApduChannel, keys: KeySource, ctx: CardContext, key_id: int,
                          *, key_version: int | None = None, precheck: bool = True) -> None:
    """Authenticate the terminal to the card with card key ``key_id`` (spec §4.3 B).

    X (原始信息) is a fresh terminal random; R (过程因子) is the card's challenge.
    ``key_version`` (else the key source's) is sent as the optional 17th data byte (Lc 11,
    part 5 §6.4.3); the precheck asks INTERNAL AUTHENTICATE with the same version, so a card
    without that version answers 6A88 there, before any try is at risk.
    """
    if key_version is None:
        key_version = keys.key_version
    if not keys.has_key(key_id):
        version = "" if key_version is None else f" version {key_version}"
        raise RefusedError(f"{keys.name} has no key{version} for card key {key_id:02X}; "
                           "nothing was sent")
    if precheck and key_id != KEY_IRK and keys.has_key(KEY_IRK):
        internal_authenticate(channel, keys, ctx)
    x = secrets.token_bytes(8)
    challenge = channel.check(cmds.get_challenge(8)).data
    a = keys.auth_data(ctx, key_id, challenge, x)
    # a DF key's reference (sbcard.card.dfs.key_ref) names it in the key source; the card
    # knows it by its ID inside the selected DF
    channel.check(cmds.external_authenticate(card_key_id(key_id), a, x, key_version))


def send_with_mac(channel: ApduChannel, keys: KeySource, ctx: CardContext, key_id: int,
                  cmd: CommandApdu, *, encrypt: bool = False) -> ResponseApdu:
    """Secure messaging (spec §5.6): a fresh challenge, the data optionally enciphered, and
    a 4-byte MAC over ``CLA INS P1 P2 Lc ‖ data`` (Lc counting the MAC) appended.

    ``cmd`` carries the secure-messaging class already (84 proprietary, 04 ISO); the session
    key of card key ``key_id`` comes from the key source, never from this process's memory.
    """
    if not keys.has_key(key_id):
        raise RefusedError(f"{keys.name} has no key for card key {key_id:02X}; nothing was sent")
    challenge = channel.check(cmds.get_challenge(8)).data
    if encrypt:
        size = ctx.algorithm.block_size
        ld = 1 + len(cmd.data)                   # LD ‖ data, then 80 00… unless aligned
        enc_len = ld if ld % size == 0 else (ld + size) // size * size
        header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2, enc_len + 4))
        data = keys.enciphered_command(ctx, key_id, challenge, header, cmd.data)
    else:
        header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2, len(cmd.data) + 4))
        data = cmd.data + keys.mac(ctx, key_id, challenge, header + cmd.data)
    return channel.check(CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le,
                                     name=f"{cmd.name or 'command'} (MAC)"))
