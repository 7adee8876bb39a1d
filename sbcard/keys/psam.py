"""PSAM key source: the card keys' cryptograms computed by a 社会保障PSAM卡 (spec §5.3–§5.7).

The PSAM holds roots, never hands them out, and computes in two steps: ``BF DE`` (DELIVERY
SESSION KEY) diversifies a root with the card's factors and derives the session key from a
session factor, then ``80 FA`` (CIPHER DATA) enciphers or MACs with it. This module turns the
``KeySource`` questions into those two steps so that the answers are byte-identical to the
software key file's (``card_algos``) for the same roots.

APDUs sent (block = 8 bytes DES, 16 bytes SM4/SSF33)::

    SELECT DDF by name     00 A4 04 00 Lc sx1.sh.社会保障 (DES) | sx2… (SSF33) | sx3… (SM4)
    READ BINARY 0016       00 B0 96 00 06           → 终端机编号 (cn 6); SELECT EF if refused
    SELECT ADF by AID      00 A4 04 00 06 D15600000590
    DELIVERY SESSION KEY   BF DE <levels<<5 | type> <PSAM key ID> Lc factors(8·levels) ‖ factor
    CIPHER DATA            80 FA P1 00 Lc data
        P1 bits: 01 = MAC (else encrypt, ECB), 02 = more data follows, 04 = data opens with IV
        00 encrypt (last/only)  02 encrypt, more follows
        05 MAC in one command   07 first MAC part  03 next part  01 last part
        MAC commands carry data already padded (ISO 9797-1 method 2); the PSAM answers the
        4-byte MAC: DES leftmost 4 bytes of the last CBC block, 16-byte blocks the XOR of the
        last block's four quarters (as ``card_algos.mac``).

Which PSAM key stands for a card key is data: the card profile's ``[psam_keys]`` table
(type + PSAM key ID). The number of levels is not: PSAMs hold city (2), province (3) or
pre-diversified (1) roots, and answer ``6A80`` to the wrong count, so the levels are tried in
the order 2, 1, 3 and what worked is remembered per PSAM key and environment.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.sw import SW, CardError
from sbcard.card.dfs import DF_KEYS
from sbcard.card.filesystem import RID_MOHRSS
from sbcard.card.profiles import CardProfile, load_profile, profile_for
from sbcard.card.profiles.sections import PsamKeyRef
from sbcard.crypto.symmetric import Algorithm, pad_iso9797_m2, xor_bytes
from sbcard.errors import BadInputError, MismatchError, SbcardError
from sbcard.hexutil import is_ascii_digits
from sbcard.keys.base import CardContext, KeySource

#: DDF names per algorithm environment (GBK, spec §5.3); each holds the ADF ``PSAM_AID``.
PSAM_DDF_NAMES: dict[Algorithm, bytes] = {
    Algorithm.DES: "sx1.sh.社会保障".encode("gbk"),
    Algorithm.SSF33: "sx2.sh.社会保障".encode("gbk"),
    Algorithm.SM4: "sx3.sh.社会保障".encode("gbk"),
}
PSAM_AID = RID_MOHRSS + b"\x90"          # D15600000590
PSAM_ADF_FID = 0xDF01
EF_PUBLIC_INFO = 0x0015          # 公共信息: issuer id, PSAM serial (cn10), version, key card type
EF_TERMINAL = 0x0016             # 终端机编号 cn6
TERMINAL_LEN = 6

INS_DELIVERY_SESSION_KEY = 0xDE  # CLA BF
INS_CIPHER_DATA = 0xFA           # CLA 80
#: CIPHER DATA P1 bits.
CIPHER_MAC, CIPHER_MORE, CIPHER_IV = 0x01, 0x02, 0x04

LEVEL_ORDER = (2, 1, 3)
#: Largest data field sent in one CIPHER DATA (a multiple of both block sizes); longer input
#: is chained. PSAM buffers are small, so this stays below the 255 a short APDU allows.
MAX_CIPHER_DATA = 0xF0
MAC_LEN = 4


def psam_key_map(profile: CardProfile) -> dict[int, PsamKeyRef]:
    """The profile's ``[psam_keys]`` table as ``{card key ID: PsamKeyRef}``, plus the keys of
    the profile's DFs (DF01–DF07) by their references (``sbcard.card.dfs.key_ref``), where the
    reader-interface spec's appendix B gives their PSAM usage and ID (``DfKey.psam``)."""
    if not profile.psam_keys:
        raise BadInputError(f"card profile {profile.name} has no [psam_keys] table")
    refs = dict(profile.psam_keys)
    for key in DF_KEYS:
        if key.psam is not None and key.df in profile.dfs:
            refs.setdefault(key.ref, PsamKeyRef(key.ref, key.psam[0], key.psam[1], key.name))
    return refs


def decode_terminal_number(data: bytes) -> str:
    """cn bytes → digits (``F`` padding dropped); BadInputError if a nibble is not a digit."""
    text = data.hex().upper().rstrip("F")
    if not is_ascii_digits(text):
        raise BadInputError("PSAM terminal number (0016) is not cn digits")
    return text


def _pad_block(algorithm: Algorithm, data: bytes, what: str) -> bytes:
    """Right-pad ``data`` with 00 to one block (challenges, X): the PSAM gets whole blocks."""
    size = algorithm.block_size
    if len(data) > size or len(data) not in (4, 8, 16):
        raise BadInputError(f"{algorithm.name} {what} must be 4, 8 or {size} bytes, "
                            f"got {len(data)}")
    return data + bytes(size - len(data))


class _PsamState:
    """What belongs to the PSAM card itself, shared by a source and its ``for_profile`` views:
    the environment whose ADF is selected, the terminal number, the level counts it accepted
    (per PSAM key: the root's, whichever card key a profile maps to it) and the lock."""

    def __init__(self) -> None:
        self.env: Algorithm | None = None
        self.terminal: str | None = None
        self.terminal_error: SbcardError | None = None
        #: (environment, usage type, PSAM key ID) → levels that BF DE accepted.
        self.levels: dict[tuple[Algorithm, int, int], int] = {}
        # One PSAM serves every reader of a parallel batch (and of the national driver): an
        # operation is a session-key delivery and its use, and no other thread's BF DE may
        # come between them.
        self.lock = threading.RLock()


class PsamKeySource(KeySource):
    """Cryptograms from a PSAM on ``channel`` (a reader or the in-process simulated PSAM).

    ``profile`` supplies the card key → PSAM key map. The PSAM's own PIN or external
    authentication, which some issuers require before ``BF DE``, is not handled here.
    """

    def __init__(self, channel: ApduChannel, profile: CardProfile | str | None = None, *,
                 name: str | None = None, on_close: Callable[[], None] | None = None,
                 max_data: int = MAX_CIPHER_DATA, reader: str | None = None) -> None:
        prof = (profile_for() if profile is None
                else load_profile(profile) if isinstance(profile, str) else profile)
        if max_data < 32 or max_data > 0xFF:
            raise BadInputError(f"max_data must be 32..255, got {max_data}")
        self.channel = channel
        #: The PC/SC reader the PSAM sits in (None when simulated): not a card reader.
        self.reader = reader
        self.key_map = psam_key_map(prof)
        self.name = name or "PSAM"
        self.max_data = max_data
        self._on_close = on_close
        self._psam = _PsamState()
        self._view = False              # a for_profile() answer: shares _psam, closes nothing

    # -- environment ----------------------------------------------------------------------
    def _check(self, command: CommandApdu) -> bytes:
        return self.channel.check(command).data

    def _enter(self, algorithm: Algorithm) -> None:
        """Select the environment's DDF (reading 0016 the first time) and its ADF."""
        if self._psam.env is algorithm:
            return
        name = PSAM_DDF_NAMES.get(algorithm)
        if name is None:
            raise BadInputError(f"{self.name}: no PSAM environment for {algorithm.name}")
        self._psam.env = None
        label = name.decode("gbk")
        self._check(CommandApdu(0x00, 0xA4, 0x04, 0x00, name, 256,
                                name=f"SELECT PSAM DDF {label}"))
        if self._psam.terminal is None:
            self._read_terminal()
        self._check(CommandApdu(0x00, 0xA4, 0x04, 0x00, PSAM_AID, 256,
                                name=f"SELECT PSAM ADF {PSAM_AID.hex().upper()} ({label})"))
        self._psam.env = algorithm

    def _read_terminal(self) -> None:
        try:
            response = self.channel.send(cmds.read_binary(0, TERMINAL_LEN, sfi=EF_TERMINAL & 0x1F))
            if response.sw != SW.OK:
                self._check(cmds.select_ef(EF_TERMINAL))
                data = self._check(cmds.read_binary(0, TERMINAL_LEN))
            else:
                data = response.data
            if len(data) != TERMINAL_LEN:
                raise MismatchError(f"{self.name}: terminal number (0016) is {len(data)} "
                                    f"bytes, expected {TERMINAL_LEN}")
            self._psam.terminal = decode_terminal_number(data)
            self._psam.terminal_error = None
        except SbcardError as exc:
            self._psam.terminal_error = exc

    @property
    def terminal_number(self) -> str:
        """终端机编号 (12 digits, the first 6 the city code) from EF 0016 of the PSAM."""
        if self._psam.terminal is None:
            with self._operation():
                if self._psam.terminal is None:     # another thread may have read it
                    self._psam.env = None           # read it under a fresh DDF selection
                    self._enter_any()
        if self._psam.terminal is None:
            raise self._psam.terminal_error or MismatchError(f"{self.name}: no terminal number")
        return self._psam.terminal

    def _enter_any(self) -> None:
        """Enter the first environment the PSAM has (DES, then SM4), to read its files."""
        last: CardError | None = None
        for algorithm in (Algorithm.DES, Algorithm.SM4):
            try:
                self._enter(algorithm)
                return
            except CardError as exc:
                last = exc
        assert last is not None
        raise last

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One PSAM exchange held exclusively (against other threads of this process and
        other programs); after a failure the next one reselects."""
        with self._psam.lock:
            try:
                with self.channel.exclusive():
                    yield
            except SbcardError:
                self._psam.env = None
                raise

    # -- the two PSAM steps ---------------------------------------------------------------
    def _ref(self, key_id: int) -> PsamKeyRef:
        ref = self.key_map.get(key_id)
        if ref is None:
            raise BadInputError(f"{self.name}: the card profile maps no PSAM key to card key "
                                f"{key_id:02X}")
        versioned = ref.for_version(self.key_version)
        if versioned is None:
            raise BadInputError(f"{self.name}: the card profile maps no PSAM key to card key "
                                f"{key_id:02X} version {self.key_version} ([psam_keys] "
                                "versions)")
        return versioned

    def _deliver(self, ctx: CardContext, key_id: int, factor: bytes) -> None:
        """BF DE: session key for card key ``key_id`` from ``factor``, trying 2, 1, 3 levels."""
        ref = self._ref(key_id)
        self._enter(ctx.algorithm)
        root = (ctx.algorithm, ref.usage_type, ref.psam_key_id)
        known = self._psam.levels.get(root)
        order = (known,) if known is not None else LEVEL_ORDER
        for levels in order:
            command = CommandApdu(
                0xBF, INS_DELIVERY_SESSION_KEY, ref.usage(levels), ref.psam_key_id,
                b"".join(ctx.factors(levels)) + factor,
                name=f"DELIVERY SESSION KEY {ref.usage(levels):02X} {ref.psam_key_id:02X} "
                     f"({ref.name}, card key {key_id:02X})")
            response = self.channel.send(command)
            if response.sw == SW.OK:
                self._psam.levels[root] = levels
                return
            if response.sw != SW.WRONG_DATA or known is not None:
                raise CardError.for_sw(response.sw, command.name)
        raise CardError.for_sw(SW.WRONG_DATA, f"DELIVERY SESSION KEY {ref.psam_key_id:02X} "
                                       f"({ref.name}): refused with 2, 1 and 3 levels")

    def _cipher(self, p1: int, data: bytes, *, answer: int | None) -> bytes:
        command = CommandApdu(0x80, INS_CIPHER_DATA, p1, 0x00, data,
                              256 if answer is not None else None, name=f"CIPHER DATA P1={p1:02X}")
        out = self._check(command)
        if answer is not None and len(out) != answer:
            raise MismatchError(f"{self.name}: CIPHER DATA P1={p1:02X} answered {len(out)} "
                                f"bytes, expected {answer}")
        return out

    def _auth(self, ctx: CardContext, key_id: int, factor: bytes, x: bytes) -> bytes:
        """A over X (spec §5.5): DES ``E_SK(X)``; 16-byte ``T = E_SK(X‖00×8)``, T[0:8]⊕T[8:16]."""
        if len(x) != 8:
            raise BadInputError(f"authentication input X must be 8 bytes, got {len(x)}")
        size = ctx.algorithm.block_size
        with self._operation():
            self._deliver(ctx, key_id, _pad_block(ctx.algorithm, factor, "challenge"))
            t = self._cipher(0x00, x + bytes(size - 8), answer=size)
        return t if size == 8 else xor_bytes(t[:8], t[8:])

    # -- KeySource --------------------------------------------------------------------------
    def auth_data(self, ctx: CardContext, key_id: int, challenge: bytes,
                  original: bytes) -> bytes:
        return self._auth(ctx, key_id, challenge, original)

    def internal_auth_expected(self, ctx: CardContext, r1: bytes, r2: bytes) -> bytes:
        return self._auth(ctx, 0x00, r1, r2)

    def mac(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        size = ctx.algorithm.block_size
        body = bytes(size) + pad_iso9797_m2(data, size)      # IV 00… opens the data
        room = self.max_data - self.max_data % size
        parts = [body[i:i + room] for i in range(0, len(body), room)]
        with self._operation():
            self._deliver(ctx, key_id, _pad_block(ctx.algorithm, challenge, "challenge"))
            if len(parts) == 1:
                return self._cipher(0x05, parts[0], answer=MAC_LEN)
            self._cipher(0x07, parts[0], answer=None)
            for part in parts[1:-1]:
                self._cipher(0x03, part, answer=None)
            return self._cipher(0x01, parts[-1], answer=MAC_LEN)

    def encrypt(self, ctx: CardContext, key_id: int, challenge: bytes, data: bytes) -> bytes:
        # Same layout as card_algos.encrypt_field: LD ‖ data, 80 00… only when not aligned.
        size = ctx.algorithm.block_size
        if len(data) > 0xFF:
            raise BadInputError(f"field data must be at most 255 bytes, got {len(data)}")
        block = bytes([len(data)]) + data
        if len(block) % size:
            block = pad_iso9797_m2(block, size)
        room = self.max_data - self.max_data % size
        parts = [block[i:i + room] for i in range(0, len(block), room)]
        out = bytearray()
        with self._operation():
            self._deliver(ctx, key_id, _pad_block(ctx.algorithm, challenge, "challenge"))
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                out += self._cipher(0x00 if last else CIPHER_MORE, part, answer=len(part))
        return bytes(out)

    def has_key(self, key_id: int) -> bool:
        ref = self.key_map.get(key_id)
        return ref is not None and ref.for_version(self.key_version) is not None

    def levels_used(self, algorithm: Algorithm, key_id: int) -> int | None:
        """The level count the PSAM accepted for this key (None until it was used)."""
        ref = self.key_map.get(key_id)
        versioned = ref.for_version(self.key_version) if ref is not None else None
        if versioned is None:
            return None
        return self._psam.levels.get((algorithm, versioned.usage_type, versioned.psam_key_id))

    def for_profile(self, profile: CardProfile) -> KeySource:
        """The same PSAM (channel, lock, selected environment, terminal number, level counts)
        with ``profile``'s key map (``psam_key_map``); ``self`` when the map is the same.
        Nothing of ``self`` changes, so a call on another reader that uses ``self`` (or
        another view) at the same time is not affected; PSAM exchanges stay serialised by
        the shared lock."""
        key_map = psam_key_map(profile)
        if key_map == self.key_map:
            return self
        view = copy.copy(self)
        view.key_map = key_map
        view._view = True
        return view

    def close(self) -> None:
        if self._view:                  # the source it came from owns the PSAM
            return
        on_close, self._on_close = self._on_close, None
        self._psam.env = None
        if on_close is not None:
            on_close()
