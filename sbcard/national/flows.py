"""The card side of the national functions, on a session the caller opened (no config here).

``read_basic`` is what ``iReadCardBas`` and ``sbcard read --format ireadcardbas`` both do:
authenticate the card first (INTERNAL AUTHENTICATE checked by the key source: a PSAM, a key
file or an HSM), then EXTERNAL AUTHENTICATE with RKSSSE when EF06 asks for it (3.0 cards), then
read; any failure is a ``NationalError`` and no line at all (spec §7.2; the flow of
``gdgly/SI_3rdCard`` ``SSCARDCtrl.cpp`` ``iReadCardBas`` comments, steps 4–8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import SW, CardError, SecurityStatusError
from sbcard.card.filesystem import EF05, EF06, KEY_IRK, KEY_RKSSSE
from sbcard.errors import BadInputError, MismatchError, SbcardError, TransportError
from sbcard.keys.base import CardContext, KeySource
from sbcard.national import codes
from sbcard.national.codes import NationalError
from sbcard.national.lines import ireadcardbas_line
from sbcard.ops.auth import external_authenticate, internal_authenticate
from sbcard.ops.read import context_of, decode_records, read_records, select_ssse

if TYPE_CHECKING:
    from sbcard.card.profiles import CardProfile

#: Fields iReadCardBas must carry: a card without one gets an error, never a short line.
REQUIRED = ("region_code", "ssn", "card_no", "card_id", "name", "issue_date", "expiry_date")


class ClassifiedKeys(KeySource):
    """A key source whose failures carry the national PSAM codes (−2201/−2202/−2203/−24).

    The integrator's fallback to the HSM steps hangs on these codes, so a PSAM that lacks a
    key must say which, not "card error".
    """

    def __init__(self, inner: KeySource) -> None:
        self.inner = inner
        self.name = inner.name

    def _classify(self, exc: SbcardError, key_id: int) -> NationalError:
        if isinstance(exc, NationalError):
            return exc
        if isinstance(exc, TransportError):
            return NationalError(codes.NO_PSAM)
        if (isinstance(exc, CardError) and exc.sw in (SW.KEY_NOT_FOUND, SW.RECORD_NOT_FOUND)) or (
                isinstance(exc, BadInputError) and "maps no PSAM key" in str(exc)):
            return NationalError(codes.PSAM_NO_RKSSSE if key_id == KEY_RKSSSE
                                 else codes.PSAM_KEY_LEVEL)
        if isinstance(exc, CardError | BadInputError):
            return NationalError(codes.PSAM_ALGORITHM)
        return NationalError(codes.PSAM_KEY_LEVEL, f"{codes.message(codes.PSAM_KEY_LEVEL)}"
                                                   f"（{exc}）")

    def _run(self, key_id: int, fn: Any, *args: Any) -> bytes:
        try:
            return fn(*args)
        except SbcardError as exc:
            raise self._classify(exc, key_id) from exc

    def auth_data(self, ctx: CardContext, key_id: int, challenge: bytes,
                  original: bytes) -> bytes:
        return self._run(key_id, self.inner.auth_data, ctx, key_id, challenge, original)

    def internal_auth_expected(self, ctx: CardContext, r1: bytes, r2: bytes) -> bytes:
        return self._run(KEY_IRK, self.inner.internal_auth_expected, ctx, r1, r2)

    def mac(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        return self._run(key_id, self.inner.mac, ctx, key_id, challenge, data)

    def encrypt(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        return self._run(key_id, self.inner.encrypt, ctx, key_id, challenge, data)

    def enciphered_command(self, ctx: CardContext, key_id: int, challenge: bytes,
                           header: bytes, plain: bytes) -> bytes:
        return self._run(key_id, self.inner.enciphered_command, ctx, key_id, challenge,
                         header, plain)

    def has_key(self, key_id: int) -> bool:
        return self.inner.has_key(key_id)

    def for_profile(self, profile: CardProfile) -> KeySource:
        inner = self.inner.for_profile(profile)
        return self if inner is self.inner else ClassifiedKeys(inner)

    def close(self) -> None:
        self.inner.close()


def authenticate_card(channel: ApduChannel, keys: KeySource, ctx: CardContext) -> None:
    """INTERNAL AUTHENTICATE: a card that is not genuine is −21, before anything is read."""
    if not keys.has_key(KEY_IRK):
        raise NationalError(codes.PSAM_KEY_LEVEL, "密钥来源没有内部认证密钥(IRK)，无法认证卡片")
    try:
        internal_authenticate(channel, keys, ctx)
    except MismatchError:
        raise NationalError(codes.INTERNAL_AUTH) from None


@dataclass
class BasicRead:
    data: dict[str, Any]          # ``read --json`` shape
    line: str                     # the iReadCardBas line


def read_basic(channel: ApduChannel, keys: KeySource | None, *,
               terminal_number: str | None = None, device_number: str = "",
               today: dt.date | None = None) -> BasicRead:
    """Authenticate, then read EF05/EF06; the iReadCardBas line or a ``NationalError``."""
    if keys is None:
        raise NationalError(codes.NO_PSAM, "无PSAM卡（未配置密钥来源：iReadCardBas先认证卡片，"
                                           "请配置PSAM、密钥文件或加密机，或用HSM分步函数）")
    keys = keys if isinstance(keys, ClassifiedKeys) else ClassifiedKeys(keys)
    with channel.exclusive():
        info = select_ssse(channel)
        ef05 = read_records(channel, EF05, EF05.tags)
        ctx = context_of(channel.atr, info, ef05)
        authenticate_card(channel, keys, ctx)
        try:
            ef06 = read_records(channel, EF06, EF06.tags)
        except SecurityStatusError:
            if not keys.has_key(KEY_RKSSSE):
                raise NationalError(codes.PSAM_NO_RKSSSE) from None
            external_authenticate(channel, keys, ctx, KEY_RKSSSE, precheck=False)
            ef06 = read_records(channel, EF06, EF06.tags)
    report = decode_records(ef05, ef06, channel.atr, info, [], today=today)
    data = report.to_json()
    missing = [k for k in REQUIRED if not data.get(k)]
    if missing:
        raise NationalError(-0x6A83, f"{codes.message(-0x6A83)}：{', '.join(missing)}")
    line = ireadcardbas_line(data, terminal_number=terminal_number, device_number=device_number)
    if terminal_number:
        data["terminal_number"] = terminal_number
    return BasicRead(data, line)
