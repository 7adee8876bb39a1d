"""``SSCardDriver``: the national reader interface (社保卡读卡通用接口) as Python methods.

One method per national function, named exactly as the function, each returning
``(code, text)``: 0 and the national output string, or a negative code and the Chinese
message (``sbcard.national.codes``). Nothing raises out of a national method: the C library
and the local service hand the pair to programs written for ``SSCardDriver.dll``.

Each call opens the reader of its ``iType`` (configuration: ``sbcard.national.config``),
powers the card, does its work and powers the card off, as the national rules require
(spec §7.1). The HSM steps are the exception: Step1 leaves the card powered for Step2/Step3
(the card's challenge must survive), and any other call on that reader ends the pending steps.
Calls are serialised per reader (a lock per reader); different readers run in parallel.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sbcard import __version__
from sbcard.apdu import commands as cmds
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.commands import RecordMode
from sbcard.apdu.sw import SW, NotFoundError, SecurityStatusError
from sbcard.card.elements import BY_EF_TAG, element
from sbcard.card.filesystem import EF05, EF06, KEY_PUK, KEY_RKSSSE
from sbcard.card.profiles import (
    CardProfile,
    ProfileChoice,
    choose_profile,
    load_profile,
)
from sbcard.compose import (
    KeySourceOptions,
    SessionOptions,
    connect_session,
    make_link,
    open_key_source,
    open_psam,
)
from sbcard.errors import NoCardError, SbcardError, TransportError
from sbcard.keys.base import CardContext, KeySource
from sbcard.keys.hsm import hsm_address_map
from sbcard.national import codes, dffiles
from sbcard.national.codes import NationalError
from sbcard.national.config import DriverConfig, load_config
from sbcard.national.debit import (
    DEBIT_RECORD_UNSUPPORTED,
    DEBIT_UNSUPPORTED,
    parse_debit_key,
    parse_pay_info,
)
from sbcard.national.flows import REQUIRED, ClassifiedKeys, read_basic
from sbcard.national.lines import ireadcardbas_line, join_fields, split_fields
from sbcard.national.pinpad import RELOAD_REFUSED, change_on_pin_pad, verify_on_pin_pad
from sbcard.national.pinsource import PinSource, check_digits, pin_source_for
from sbcard.ops.auth import external_authenticate
from sbcard.ops.pin import Pin, pin_status, reload_pin, unblock_pin
from sbcard.ops.private import open_private
from sbcard.ops.read import (
    context_of,
    decode_records,
    json_field,
    read_photo,
    read_records,
    select_ssse,
)
from sbcard.ops.readers import reader_reports, watch_readers

if TYPE_CHECKING:       # PIN sources load only when a PIN function runs (first-call time)
    from sbcard.national.pinsource import PinSource
    from sbcard.transport.base import Transport

#: HSM logical key addresses the national step strings carry (spec §5.8, appendix B of the
#: reader spec restatement; seen in ``docs/加密机方式指令流.txt``): PUK and STKSSSE.
HSM_PUK = "0090"
HSM_STK = "0173"

#: The national functions ``SSCardDriver`` implements, in the order docs list them.
NATIONAL_FUNCTIONS = (
    "iReadCardBas", "iReadCardBas_HSM_Step1", "iReadCardBas_HSM_Step2",
    "iVerifyPIN", "iChangePIN",
    "iReloadPIN", "iReloadPIN_HSM_Step1", "iReloadPIN_HSM_Step2", "iReloadPIN_HSM_Step3",
    "iUnblockPIN", "iUnblockPIN_HSM_Step1", "iUnblockPIN_HSM_Step2", "iUnblockPIN_HSM_Step3",
    "iReadCard", "iReadCard_HSM_Step1", "iReadCard_HSM_Step2",
    "iGetCardType", "iGetReaderInfo", "iGetDeviceInfo",
    "iDoDebit", "iDoDebit_HSM_Step1", "iDoDebit_HSM_Step2", "iReadDebitRecord",
    "PKI_SignData", "PKI_VerifySign",
)

@dataclass
class _Pending:
    """A card left powered between HSM steps."""

    family: str                      # "read", "reload", "unblock"
    reader: str
    transport: Any
    channel: ApduChannel
    ctx: CardContext | None = None
    state: dict[str, Any] = field(default_factory=dict)
    step: int = 1


@dataclass
class CardEvent:
    reader: str
    present: bool
    atr: str = ""


class SSCardDriver:
    """The national functions over sbcard (module docstring; docs/national-interface.md)."""

    def __init__(self, config: DriverConfig | None = None, *,
                 pin_source: PinSource | None = None,
                 clock: Callable[[], dt.date] = dt.date.today) -> None:
        self.config = config if config is not None else load_config()
        self._pin_source = pin_source
        self._clock = clock
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._sim_link: Transport | None = None
        self._keys: KeySource | None = None
        self._keys_error: NationalError | None = None
        self._keys_lock = threading.Lock()
        # Cards left powered between HSM steps, by reader. Calls on different readers run in
        # parallel and change this table, so every look and change holds _pending_lock
        # (walking it unguarded while another reader's call changed it gave "dictionary
        # changed size during iteration" → −999).
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._link_of: dict[int, Any] = {}        # id(channel) → bare link (PIN pad control)
        self._logger = _call_logger(self.config.log_file)
        #: The last profile choices made without ``[card] profile`` (newest last).
        self.profile_notes: list[str] = []

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the key source (PSAM reader) and any card left powered by an HSM step."""
        for pending in self._pendings():
            self._drop(pending)
        with self._keys_lock:
            if self._keys is not None:
                self._keys.close()
                self._keys = None

    def __enter__(self) -> SSCardDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock(self, reader: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(reader, threading.RLock())

    def _call(self, name: str, body: Callable[[], str], *, pin: bool = False
              ) -> tuple[int, str]:
        start = time.perf_counter()
        try:
            result = (codes.OK, body())
        except Exception as exc:
            if not isinstance(exc, SbcardError):
                import logging

                logging.getLogger("sbcard.national").exception("%s: unexpected error", name)
            result = codes.for_error(exc, pin=pin)
        self._logger(name, result, time.perf_counter() - start)
        return result

    def _readers(self, itype: int) -> list[str | None]:
        if itype not in (1, 2, 3, 4):
            raise NationalError(codes.CARD_TYPE, f"{codes.message(codes.CARD_TYPE)}"
                                                 f"（iType={itype}，应为1-4）")
        if self.config.sim:
            return ["sim"]
        return self.config.reader_for(itype)

    def _link(self, reader: str | None) -> Transport:
        """The bare link to ``reader``'s card. The simulated card is one for every call, so
        what a call changes (a PIN, a record) is there for the next."""
        if self.config.sim:
            if self._sim_link is None:
                self._sim_link = make_link(SessionOptions(sim=self.config.sim))
            return self._sim_link
        reserved = {}
        keys = self._keys
        psam_reader = getattr(getattr(keys, "inner", keys), "reader", None)
        if psam_reader:
            reserved[psam_reader] = "the PSAM"
        # Powered down at the end of each call (module docstring): left powered, the card
        # would keep this call's RKSSSE authentication for the next caller, in any process.
        return make_link(SessionOptions(reader=reader, reserved=reserved, power_off=True))

    @contextlib.contextmanager
    def _card(self, itype: int, *, keep: str | None = None) -> Iterator[ApduChannel]:
        """The card of ``iType`` powered for one call (``keep``: left powered for HSM steps)."""
        readers = self._readers(itype)
        first_error: SbcardError | None = None
        for reader in readers:
            key = reader or "default"
            lock = self._lock(key)
            with lock:
                pending = self._pop_pending(key)
                if pending is not None:
                    self._drop(pending)
                try:
                    session = connect_session(SessionOptions(), self._link(reader))
                except NoCardError as exc:
                    first_error = first_error or exc
                    continue
                transport, channel = session.transport, session.channel
                self._link_of[id(channel)] = session.link
                kept = False
                try:
                    if keep is not None:
                        with self._pending_lock:
                            self._pending[key] = _Pending(keep, key, transport, channel)
                    yield channel
                    kept = keep is not None
                finally:
                    if not kept:
                        self._pop_pending(key)
                        self._link_of.pop(id(channel), None)
                        transport.disconnect()
                return
        raise first_error or NoCardError("no card")

    def _drop(self, pending: _Pending) -> None:
        with contextlib.suppress(SbcardError):
            pending.transport.disconnect()
        self._pop_pending(pending.reader, pending)

    def _pendings(self) -> list[_Pending]:
        """The cards left powered now (a copy: other readers' calls change the table)."""
        with self._pending_lock:
            return list(self._pending.values())

    def _pop_pending(self, key: str, only: _Pending | None = None) -> _Pending | None:
        """Take ``key``'s pending card off the table (``only``: if it is still that one)."""
        with self._pending_lock:
            found = self._pending.get(key)
            if found is None or (only is not None and found is not only):
                return None
            return self._pending.pop(key)

    def _take_pending(self, family: str, step: int) -> _Pending:
        for pending in self._pendings():
            if pending.family == family and pending.step == step - 1:
                return pending
        raise NationalError(codes.NOT_CONNECTED, f"{codes.message(codes.NOT_CONNECTED)}"
                                                 f"（请先调用 Step{step - 1}）")

    @contextlib.contextmanager
    def _continue(self, family: str, step: int, *, last: bool) -> Iterator[_Pending]:
        pending = self._take_pending(family, step)
        with self._lock(pending.reader):
            with self._pending_lock:
                current = self._pending.get(pending.reader)
            if current is not pending:
                raise NationalError(codes.NOT_CONNECTED)
            ok = False
            try:
                yield pending
                ok = True
            finally:
                if last or not ok:
                    self._drop(pending)
                else:
                    pending.step = step

    def key_source(self) -> KeySource | None:
        """The configured key source (opened once, shared by every reader), or None."""
        with self._keys_lock:
            if self._keys is not None:
                return self._keys
            if self._keys_error is not None and self.config.key_source == "psam":
                self._keys_error = None           # a PSAM may have been inserted since
            self._keys = self._open_keys()
            return self._keys

    def _open_keys(self) -> KeySource | None:
        """The key source, with ``[card] profile`` when the configuration names one (its PSAM
        key map and HSM addresses); else the default profile's. A call that chooses the
        card's profile (:meth:`card_profile`) uses it with that profile's map
        (``KeySource.for_profile``): the PSAM is not reopened."""
        c = self.config
        if c.key_source == "none":
            return None
        named = load_profile(c.profile) if c.profile else None
        try:
            if c.key_source == "keys":
                source = open_key_source(KeySourceOptions(keys=c.keys), named,
                                         warn=lambda _m: None)
            elif c.key_source == "psam" and c.psam and c.psam.startswith("sim:"):
                source = open_psam(SessionOptions(sim="psam:" + c.psam[4:]), named)
            elif c.key_source == "psam":
                source = open_key_source(KeySourceOptions(psam=c.psam), named)
            else:
                assert c.hsm_command is not None
                source = open_key_source(KeySourceOptions(hsm_command=c.hsm_command,
                                                          hsm_protocol=c.hsm_protocol), named)
        except TransportError:
            raise NationalError(codes.NO_PSAM) from None
        except SbcardError as exc:
            if c.key_source == "psam":
                raise NationalError(codes.NO_PSAM, f"{codes.message(codes.NO_PSAM)}（{exc}）"
                                    ) from None
            raise NationalError(codes.LOAD_LIBRARY, f"密钥来源不可用：{exc}") from None
        return ClassifiedKeys(source) if source is not None else None

    def card_profile(self, ctx: CardContext) -> CardProfile:
        """The session's card profile: ``[card] profile`` when configured, else the default
        profile with the overlay ``regions.toml`` gives the card's issuing region (卡识别码;
        ``card.profiles.choose_profile``). A choice the configuration did not name is written
        to the call log and the ``sbcard.national`` logger: never silent."""
        choice = choose_profile(self.config.profile, ctx.region)
        if choice.how != "named":
            self._note(choice)
        return choice.profile

    def _note(self, choice: ProfileChoice) -> None:
        import logging

        self.profile_notes.append(choice.notice())
        del self.profile_notes[:-16]
        logging.getLogger("sbcard.national").info("%s", choice.notice())
        self._logger("card profile", (codes.OK, ""), 0.0, choice.notice())

    def terminal_number(self) -> str | None:
        """终端机编号: the configuration's, else the PSAM's (EF 0016), else None."""
        if self.config.terminal_number:
            return self.config.terminal_number
        try:
            keys = self.key_source()
        except NationalError:
            return None
        inner = getattr(keys, "inner", keys)
        try:
            return getattr(inner, "terminal_number", None)
        except SbcardError:
            return None

    def _pins(self) -> PinSource:
        if self._pin_source is None:
            c = self.config
            self._pin_source = pin_source_for(c.pin_source, pinentry=c.pinentry,
                                              fixed=c.fixed_pin)
        return self._pin_source

    # -- reading ---------------------------------------------------------------------------
    def iReadCardBas(self, iType: int) -> tuple[int, str]:
        """读基本信息: ``区划码|社会保障号码|卡号|卡识别码|姓名|卡复位信息|规范版本|发卡日期|
        卡有效期|终端机编号|终端设备号|`` after INTERNAL AUTHENTICATE (and RKSSSE on 3.0).

        No key source: −2201 (the integrator falls back to the HSM steps).
        """
        return self._call("iReadCardBas", lambda: self._read_basic(iType).line)

    def _read_basic(self, itype: int) -> Any:
        keys = self.key_source()
        with self._card(itype) as channel:
            return read_basic(channel, keys, terminal_number=self.terminal_number(),
                              device_number=self.config.device_number, today=self._clock())

    def read_fields(self, iType: int) -> tuple[int, dict[str, Any] | str]:
        """The ``sbcard read --json`` dict of an authenticated card (for the service's JSON)."""
        holder: dict[str, Any] = {}

        def body() -> str:
            holder["data"] = self._read_basic(iType).data
            return ""

        code, text = self._call("read_fields", body)
        return (code, holder["data"]) if code == codes.OK else (code, text)

    def read_photo(self, iType: int) -> tuple[int, bytes | str]:
        """EF08 数字相片 (the image bytes, JPEG or BMP, padding cut) for the service's page.

        Not a national function (the national interface has none for the photo). 3.0 cards
        guard EF08 with RKSSSE: it comes from the key source, as in ``sbcard read --photo``.
        Codes: no key source and the card wants one −2201; a card without a photo −27266
        (6A82, the file-not-found code) with the text 卡内无照片; others as ``iReadCardBas``.
        """
        holder: dict[str, bytes] = {}

        def body() -> str:
            holder["photo"] = self._read_photo(iType)
            return ""

        code, text = self._call("read_photo", body)
        return (code, holder["photo"]) if code == codes.OK else (code, text)

    def _read_photo(self, itype: int) -> bytes:
        keys = self.key_source()
        with self._card(itype) as channel:
            try:
                photo = read_photo(channel, keys=keys)
            except SecurityStatusError:
                if keys is not None:
                    raise
                raise NationalError(codes.NO_PSAM, f"{codes.message(codes.NO_PSAM)}"
                                                   "（照片需要RKSSSE密钥 photo needs a key "
                                                   "source）") from None
            except NotFoundError:
                photo = b""
        if not photo:
            raise NationalError(codes.NO_PHOTO, "卡内无照片 (no photo on this card)")
        return photo

    def iReadCardBas_HSM_Step1(self, iType: int) -> tuple[int, str]:
        """读基本信息加密机第一步: ``区划码|卡复位信息(ATR)|算法标识|卡识别码|内部认证过程因子|
        内部认证原始信息|外部认证过程因子|外部认证原始信息|终端SN|``.

        Shape and order as ``gdgly/SI_3rdCard`` ``SSCARDCtrl.cpp`` builds it and the HSM trace
        ``docs/加密机方式指令流.txt`` shows it. The card answers INTERNAL AUTHENTICATE here (its
        answer is kept for Step2); the external items are filled only when EF06 is protected
        (3.0 cards). sbcard fills the internal items for every card: the public code leaves
        them empty on 2.0 cards and so never authenticates them; we do (documented).
        """
        return self._call("iReadCardBas_HSM_Step1", lambda: self._read_step1(iType))

    def _read_step1(self, itype: int) -> str:
        with self._card(itype, keep="read") as channel:
            pending = self._pending_for(channel)
            info = select_ssse(channel)
            ef05 = read_records(channel, EF05, EF05.tags)
            ctx = context_of(channel.atr, info, ef05)
            card_id = next((r.value for r in ef05 if r.tag == 0x01), b"").hex().upper()
            version = next((r.value for r in ef05 if r.tag == 0x03), b"")
            original = channel.check(cmds.get_challenge(8)).data
            factor = channel.check(cmds.get_challenge(8)).data
            answer = channel.check(cmds.internal_authenticate(factor, original)).data[:8]
            ext_factor = ext_original = b""
            if _needs_rkssse(channel, version):
                ext_original = channel.check(cmds.get_challenge(8)).data
                ext_factor = channel.check(cmds.get_challenge(8)).data
            pending.ctx = ctx
            pending.state.update(internal=answer, external=bool(ext_factor))
            return join_fields(ctx.region, channel.atr.hex().upper(),
                               f"{ctx.algorithm.algorithm_id:02X}", card_id,
                               factor.hex().upper(), original.hex().upper(),
                               ext_factor.hex().upper(), ext_original.hex().upper(),
                               self._terminal_sn())

    def _pending_for(self, channel: ApduChannel) -> _Pending:
        return next(p for p in self._pendings() if p.channel is channel)

    def _terminal_sn(self) -> str:
        """终端SN in Step1: the configured device number, else 32 zeros (as in the trace)."""
        return self.config.device_number or "0" * 32

    def iReadCardBas_HSM_Step2(self, pKey: str) -> tuple[int, str]:
        """读基本信息加密机第二步: pKey = ``<内部认证结果16><内部认证原始信息16>|<外部认证数据16>
        <外部认证原始信息16>|`` (the HSM's answer); output as iReadCardBas.

        The card's internal-authentication answer must equal the HSM's (else −25), then RKSSSE
        external authentication with the second part (3.0 cards), then the read.
        """
        return self._call("iReadCardBas_HSM_Step2", lambda: self._read_step2(pKey))

    def _read_step2(self, pkey: str) -> str:
        parts = split_fields(pkey.strip())
        with self._continue("read", 2, last=True) as pending:
            channel = pending.channel
            internal = _hex(parts[0] if parts else "", 16, "pKey")[:8]
            if internal != pending.state["internal"]:
                raise NationalError(codes.HSM_INTERNAL_AUTH)
            if pending.state["external"]:
                ext = _hex(parts[1] if len(parts) > 1 else "", 16, "pKey")
                channel.check(CommandApdu(0x00, 0x82, 0x00, KEY_RKSSSE, ext,
                                          name="EXTERNAL AUTHENTICATE RKSSSE"))
            info = select_ssse(channel)
            ef05 = read_records(channel, EF05, EF05.tags)
            ef06 = read_records(channel, EF06, EF06.tags)
            report = decode_records(ef05, ef06, channel.atr, info, [], today=self._clock())
            data = report.to_json()
            missing = [k for k in REQUIRED if not data.get(k)]
            if missing:
                raise NationalError(-0x6A83, f"{codes.message(-0x6A83)}：{', '.join(missing)}")
            # 终端机编号 as iReadCardBas gives it: the −2203 fallback has a PSAM to ask
            return ireadcardbas_line(data, terminal_number=self.terminal_number(),
                                     device_number=self.config.device_number)

    # -- files by address ---------------------------------------------------------------------
    def iReadCard(self, iType: int, iAuthType: int, pCardInfo: str, pFileAddr: str
                  ) -> tuple[int, str]:
        """读卡: pFileAddr = ``文件|记录标识|记录标识:n|$…`` (e.g. ``SSSEEF05|01|07|$SSSEEF06|
        08|09|$``); the output mirrors it with each record's value (``SSSEEF05|<卡识别码>|
        <卡号>|$…``). iAuthType 1: the PIN first (PIN source); 2: the RK key (key source),
        only when the card asks for it.

        Files: SSSE EF05/EF06, the transparent SSSEEF07/EF08 by name alone (``SSSEEF07|$``,
        hex; §2.1.2 (4)), a region's SSSE file of the call's card profile (``SSSEEF0D|EA|$``;
        :meth:`card_profile`) and the DF01–DF07 files of 人社信息函〔2012〕37号 (``DF01EF15|2A|
        40:2|$``; a cyclic file alone = every record, ``a^b^|c^d^|``; ``sbcard.national.
        dffiles``); an unknown file is −23 with the reason. Values as ``read --json`` shows
        them, dates YYYYMMDD (address format: spec §7.2; ``:n`` = the n-th record with that
        tag). "PIN 或 RK" follows iAuthType; "PIN & RK" and RK-only files ask for what they
        need.
        """
        return self._call("iReadCard",
                          lambda: self._read_files(iType, iAuthType, pCardInfo, pFileAddr),
                          pin=iAuthType == 1)

    def _read_files(self, itype: int, auth: int, card_info: str, addr: str) -> str:
        parts = _address_parts(addr)          # in order: SSSE groups and DF01–DF07 groups
        if auth not in (1, 2):
            raise NationalError(codes.BAD_PARAMETER, f"{codes.message(codes.BAD_PARAMETER)}"
                                                     "（iAuthType 应为 1 或 2）")
        has_ssse = any(not isinstance(p, dffiles.DfGroup) for p in parts)
        df_groups = [p for p in parts if isinstance(p, dffiles.DfGroup)]
        method = dffiles.Method.PIN if auth == 1 else dffiles.Method.KEY
        keys = self.key_source() if auth == 2 or df_groups else None
        if auth == 2 and keys is None and df_groups:
            raise NationalError(codes.NO_PSAM)
        with self._card(itype) as channel:
            ctx = self._check_card_info(channel, card_info)
            profile = self.card_profile(ctx)
            if keys is not None:         # this card's key map: KeySource.for_profile
                keys = keys.for_profile(profile)
            dffiles.check_address(df_groups, profile)      # SSSE files need the profile
            wants_pin = auth == 1 and (has_ssse or any(dffiles.needs_pin(g.file, method, profile)
                                                        for g in df_groups))
            pin = None
            if wants_pin or any(dffiles.needs_pin_first(g.file, profile) for g in df_groups):
                self._guarded_status(channel)
                pin = self._pins().get_pin("请输入密码")
                if has_ssse and auth == 1:
                    select_ssse(channel)
                    channel.check(cmds.verify(_pin_block(pin)))
            out = []
            for part in parts:
                if isinstance(part, dffiles.DfGroup):
                    out.append(dffiles.read_groups(
                        channel, [part], method=method,
                        pin=None if pin is None else Pin(pin), keys=keys, ctx=ctx,
                        pin_guard=self.config.pin_guard, profile=profile))
                else:
                    select_ssse(channel)
                    out.append(_format_files(channel, [part], keys if auth == 2 else None,
                                             ctx))
            return "".join(out)

    def iWriteCard(self, iType: int, pCardInfo: str, pFileAddr: str, pWriteData: str
                   ) -> tuple[int, str]:
        """写卡: pFileAddr as for iReadCard (DF01–DF07 files), pWriteData mirrors it with
        the values (``DF01EF07|1|$``; a cyclic file: records to append, ``DF02EF07|a^b^c^d^|$``;
        a transparent file: its hex content). External authentication with each file's UK
        key from the key source (−2201 without one), then UPDATE/APPEND RECORD or UPDATE
        BINARY (reader-interface spec §3.1.3). Output: empty on success. SSSEEF07/EF08 and a
        region's file of the call's profile (``SSSEEF0D``) are written as DF files are;
        SSSEEF05/EF06 (issuance) and DF04 EF08 (不允许改写) are −23."""
        return self._call("iWriteCard",
                          lambda: self._write_files(iType, pCardInfo, pFileAddr, pWriteData))

    def _write_groups(self, addr: str) -> list[dffiles.DfGroup]:
        """pFileAddr's files, checked before the card is touched as far as no profile is
        needed: SSSE EF05/EF06 stay −23 (written at issuance; sbcard's choice)."""
        groups = dffiles.parse_groups(addr)
        if not groups:
            raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                "（pFileAddr 为空）")
        for g in groups:
            if not dffiles.is_file_group(g.file):
                raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                    f"（{g.file}：基本信息文件由发卡写入）")
        return groups

    def _write_plan(self, groups: list[dffiles.DfGroup], data: str,
                    profile: CardProfile) -> Any:
        dffiles.check_address(groups, profile)
        plan = dffiles.write_plan(groups, dffiles.parse_groups(data), profile)
        for file, _, _ in plan:                         # −23 for a file nobody may write
            spec = dffiles._spec(file, profile)
            if spec.write.never or not spec.write.key_ids():
                raise dffiles._bad(f"{file} 不允许写入")
        return plan

    def _write_files(self, itype: int, card_info: str, addr: str, data: str) -> str:
        groups = self._write_groups(addr)
        keys = self.key_source()
        if keys is None:
            raise NationalError(codes.NO_PSAM)
        with self._card(itype) as channel:
            ctx = self._check_card_info(channel, card_info)
            profile = self.card_profile(ctx)
            plan = self._write_plan(groups, data, profile)
            # the source opened once for every card, with this card's profile's PSAM key map
            # / HSM addresses: a region's overlay chosen for this card (Jiangsu's EF0D key 0D
            # at PSAM 48/13) reaches its keys without [card] profile (KeySource.for_profile;
            # the shared source is left unchanged for other readers' calls)
            dffiles.write_groups(channel, plan, keys.for_profile(profile), ctx, profile)
        return ""

    def iWriteCard_HSM_Step1(self, iType: int, pCardInfo: str, pFileAddr: str
                             ) -> tuple[int, str]:
        """写卡加密机第一步 (one file, §3.2): ``算法标识|外部认证密钥地址|过程因子|原始信息|``
        for the file's UK key (addresses: reader-interface spec appendix B)."""
        return self._call("iWriteCard_HSM_Step1",
                          lambda: self._write_step1(iType, pCardInfo, pFileAddr))

    def _write_step1(self, itype: int, card_info: str, addr: str) -> str:
        groups = self._write_groups(addr)
        if len(groups) != 1:
            raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                "（加密机方式一次写一个文件）")
        with self._card(itype, keep="writecard") as channel:
            pending = self._pending_for(channel)
            ctx = self._check_card_info(channel, card_info)
            profile = self.card_profile(ctx)
            dffiles.check_address(groups, profile)
            # the UK key's address from the session profile (appendix B, [hsm_addresses])
            ref, address = dffiles.write_key(groups[0].file, hsm_address_map(profile), profile)
            dffiles.select_df(channel, groups[0].file, profile)
            original = channel.check(cmds.get_challenge(8)).data
            factor = channel.check(cmds.get_challenge(8)).data
            pending.ctx = ctx
            pending.state.update(groups=groups, ref=ref, profile=profile)
            return join_fields(f"{ctx.algorithm.algorithm_id:02X}", address,
                               factor.hex().upper(), original.hex().upper())

    def iWriteCard_HSM_Step2(self, pKey: str, pWriteData: str) -> tuple[int, str]:
        """写卡加密机第二步: pKey = the HSM's ``A ‖ 原始信息`` (32 hex), pWriteData as for
        iWriteCard (the file of Step1)."""
        def body() -> str:
            with self._continue("writecard", 2, last=True) as pending:
                groups = pending.state["groups"]
                profile = pending.state["profile"]
                plan = dffiles.write_plan(groups, dffiles.parse_groups(pWriteData), profile)
                text = split_fields(pKey.strip())[0] if pKey.strip() else ""
                ref = pending.state["ref"]
                dffiles.external_auth_with(pending.channel, ref, _hex(text, 16, "pKey"))
                session = dffiles.plain_session(pending.channel, groups[0].file, ref,
                                                pending.ctx, profile)
                dffiles.write_with(session, plan, profile)
            return ""

        return self._call("iWriteCard_HSM_Step2", body)

    def iReadCard_HSM_Step1(self, iType: int, pCardInfo: str, pFileAddr: str
                            ) -> tuple[int, str]:
        """读卡加密机第一步 (one file): ``算法标识|外部认证密钥地址|过程因子|原始信息|`` for the
        RK external authentication the file needs (RKSSSE, address 004C); −2204 when the file
        needs none (spec §7.2)."""
        return self._call("iReadCard_HSM_Step1",
                          lambda: self._read_card_step1(iType, pCardInfo, pFileAddr))

    def _read_df_step1(self, itype: int, card_info: str, group: Any) -> str:
        """A DF file (or SSSE EF07/EF08, a region's file): its RK key's address in the
        session profile's map (appendix B; ``[hsm_addresses]`` for DF06 or regional keys) and
        two randoms; −2204 for a file read freely or with the PIN only; "PIN & RK" verifies
        the PIN first (§2.2.3 (6))."""
        with self._card(itype, keep="readcard") as channel:
            pending = self._pending_for(channel)
            ctx = self._check_card_info(channel, card_info)
            profile = self.card_profile(ctx)
            dffiles.check_address([group], profile)
            found = dffiles.read_key(group.file, hsm_address_map(profile), profile)
            if found is None:
                raise NationalError(codes.HSM_NOT_NEEDED)
            ref, address = found
            dffiles.select_df(channel, group.file, profile)
            if dffiles.needs_pin_first(group.file, profile):
                self._guarded_status(channel)
                pin = self._pins().get_pin("请输入密码")
                dffiles.select_df(channel, group.file, profile)
                channel.check(cmds.verify(_pin_block(pin)))
            original = channel.check(cmds.get_challenge(8)).data
            factor = channel.check(cmds.get_challenge(8)).data
            pending.ctx = ctx
            pending.state.update(df_group=group, ref=ref, profile=profile)
            return join_fields(f"{ctx.algorithm.algorithm_id:02X}", address,
                               factor.hex().upper(), original.hex().upper())

    def _read_card_step1(self, itype: int, card_info: str, addr: str) -> str:
        groups = _address_parts(addr)
        if len(groups) != 1:
            raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                "（加密机方式一次读一个文件）")
        if isinstance(groups[0], dffiles.DfGroup):
            return self._read_df_step1(itype, card_info, groups[0])
        with self._card(itype, keep="readcard") as channel:
            pending = self._pending_for(channel)
            ctx = self._check_card_info(channel, card_info)
            spec = EF05 if groups[0][0] == "EF05" else EF06
            probe = channel.send(cmds.read_record(groups[0][1][0][0], sfi=spec.sfi or 0,
                                                  mode=RecordMode.FIRST_ID))
            if probe.sw != SW.SECURITY_NOT_SATISFIED:
                raise NationalError(codes.HSM_NOT_NEEDED)
            # RKSSSE's address from the session profile ([hsm_addresses] "0A" = 004C)
            address = dffiles.hsm_key_address(KEY_RKSSSE,
                                              hsm_address_map(self.card_profile(ctx)))
            original = channel.check(cmds.get_challenge(8)).data
            factor = channel.check(cmds.get_challenge(8)).data
            pending.ctx = ctx
            pending.state["groups"] = groups
            return join_fields(f"{ctx.algorithm.algorithm_id:02X}", address,
                               factor.hex().upper(), original.hex().upper())

    def iReadCard_HSM_Step2(self, pKey: str) -> tuple[int, str]:
        """读卡加密机第二步: pKey = the HSM's ``A ‖ 原始信息`` (32 hex); output as iReadCard."""
        def body() -> str:
            with self._continue("readcard", 2, last=True) as pending:
                text = split_fields(pKey.strip())[0] if pKey.strip() else ""
                group = pending.state.get("df_group")
                if group is not None:
                    ref = pending.state["ref"]
                    dffiles.external_auth_with(pending.channel, ref, _hex(text, 16, "pKey"))
                    profile = pending.state["profile"]
                    session = dffiles.plain_session(pending.channel, group.file, ref,
                                                    pending.ctx, profile)
                    session.pin_ok = dffiles.needs_pin_first(group.file, profile)
                    return dffiles.read_with(session, group, profile)
                pending.channel.check(CommandApdu(0x00, 0x82, 0x00, KEY_RKSSSE,
                                                  _hex(text, 16, "pKey"),
                                                  name="EXTERNAL AUTHENTICATE RKSSSE"))
                return _format_files(pending.channel, pending.state["groups"], None,
                                     pending.ctx)

        return self._call("iReadCard_HSM_Step2", body)

    # -- card and reader --------------------------------------------------------------------
    def iGetCardType(self) -> tuple[int, str]:
        """卡类型: "1" when the contact reader holds a card, else "2" (contactless).

        The national list names the function without a public description of its values;
        sbcard answers the iType that finds the card (documented assumption).
        """
        def body() -> str:
            for itype in (1, 2):
                try:
                    with self._card(itype):
                        return str(itype)
                except NoCardError:
                    continue
            raise NationalError(codes.NO_CARD)

        return self._call("iGetCardType", body)

    def iGetReaderInfo(self) -> tuple[int, str]:
        """``读卡器序列号|PSAM终端机编号|`` (the C function has two output buffers)."""
        def body() -> str:
            reader = "sbcard-sim" if self.config.sim else (self.config.contact_reader or "")
            if not reader and not self.config.sim:
                reports = reader_reports()
                reader = reports[0].name if reports else ""
            return join_fields(reader, self.terminal_number() or "000000000000")

        return self._call("iGetReaderInfo", body)

    def iGetDeviceInfo(self) -> tuple[int, str]:
        """``厂商|驱动版本|读卡器(接触)|读卡器(非接)|密钥来源|`` (a vendor extension)."""
        def body() -> str:
            c = self.config
            contact = f"simulator:{c.sim}" if c.sim else (c.contact_reader or "auto")
            contactless = f"simulator:{c.sim}" if c.sim else (
                c.contactless_reader or c.contact_reader or "auto")
            return join_fields("sbcard", __version__, contact, contactless, c.key_source)

        return self._call("iGetDeviceInfo", body)

    def card_events(self, poll: float = 0.5, should_stop: Callable[[], bool] = lambda: False
                    ) -> Iterator[CardEvent]:
        """Card inserted/removed per reader, as they happen (PC/SC; the simulator: one event)."""
        if self.config.sim:
            yield CardEvent("sbcard-sim", True, "")
            return
        for event in watch_readers(poll=poll, should_stop=should_stop):
            if event.reader is None:           # card events always name their reader
                continue
            if event.event in ("card present", "card inserted", "card changed"):
                yield CardEvent(event.reader, True, event.atr or "")
            elif event.event == "card removed":
                yield CardEvent(event.reader, False, "")

    # -- medical purse (DF04, offline mode) ----------------------------------------------------
    def iDoDebit(self, iType: int, pCardInfo: str, pPayInfo: str) -> tuple[int, str]:
        """消费交易 ([S9] §8.1): pPayInfo = ``总金额|个人账户+统筹金额|YYYYMMDDHHMMSS|``.

        NOT IMPLEMENTED (−13, ``national.debit.DEBIT_UNSUPPORTED``) after the inputs are
        checked (−23 for a malformed pPayInfo, −1 for an iType outside 1–4): the public
        evidence does not define how the two amounts map onto the card's three, the
        transaction type code, nor the card's DPK/DTK derivation (docs/national-interface.md).
        """
        def body() -> str:
            self._readers(iType)
            parse_pay_info(pPayInfo)
            raise NationalError(codes.UNSUPPORTED,
                                codes.message(codes.UNSUPPORTED) + DEBIT_UNSUPPORTED)

        return self._call("iDoDebit", body)

    def iDoDebit_HSM_Step1(self, iType: int, pCardInfo: str, pPayInfo: str) -> tuple[int, str]:
        """基于加密机的消费交易（步骤一） ([S9] §8.2): would answer ``算法标识|密钥地址|伪随机数|
        医疗消费交易序号|交易金额|交易类型|终端机编号|交易时间|``; −13 as iDoDebit."""
        def body() -> str:
            self._readers(iType)
            parse_pay_info(pPayInfo)
            raise NationalError(codes.UNSUPPORTED,
                                codes.message(codes.UNSUPPORTED) + DEBIT_UNSUPPORTED)

        return self._call("iDoDebit_HSM_Step1", body)

    def iDoDebit_HSM_Step2(self, pKey: str) -> tuple[int, str]:
        """基于加密机的消费交易（步骤二） ([S9] §8.3): pKey = ``终端交易序号|交易时间|MAC1|``;
        −23 for a malformed pKey, else −13 as iDoDebit."""
        def body() -> str:
            parse_debit_key(pKey)
            raise NationalError(codes.UNSUPPORTED,
                                codes.message(codes.UNSUPPORTED) + DEBIT_UNSUPPORTED)

        return self._call("iDoDebit_HSM_Step2", body)

    def iReadDebitRecord(self, iType: int) -> tuple[int, str]:
        """读消费交易记录 ([S9] §9.1): records ``交易序号^终端机编号^交易时间^本次消费总金额^
        个人账户与统筹金额^`` separated by ``|``, from DF04 EF08 after the PIN. −13: DF04 is
        not in sbcard's card model yet, and which record amounts make 本次消费总金额 is not
        defined (docs/national-interface.md)."""
        def body() -> str:
            self._readers(iType)
            raise NationalError(codes.UNSUPPORTED,
                                codes.message(codes.UNSUPPORTED) + DEBIT_RECORD_UNSUPPORTED)

        return self._call("iReadDebitRecord", body)

    # -- 3rd generation: PKI ------------------------------------------------------------------
    # The card work is in ``sbcard.national.pki``, imported when a PKI function is called:
    # SM2, X.509 and asn1crypto stay out of every other call's first-call time (the one lazy
    # import of the driver, listed in tests/test_layers.py).
    def PKI_SignData(self, pUserPin: str, pInData: str, iType: int) -> tuple[int, str]:
        """数字签名: the card's PKI application signs pInData with its SM2 key.

        pUserPin (the PKI user PIN) is verified first when given; pInData's GBK bytes are the
        data; the output is r‖s as 128 uppercase hex digits, the standard SM2 signature over
        SM3(Z‖data) that the card's certificate verifies. Both are ASSUMPTIONS (only the
        function's name and parameters are public; docs/national-interface.md). −51/−52 for a
        wrong/blocked PIN, −33 when the card wants the PIN and none was given, −1 for a card
        without the PKI application (not a 3.0 card).
        """
        def body() -> str:
            from sbcard.national import pki  # inside the call: nothing raises out

            return pki.sign_data(lambda: self._card(iType), pUserPin, pInData)

        return self._call("PKI_SignData", body, pin=True)

    def PKI_VerifySign(self, pUserPin: str, pCert: str, pClearText: str, pSignature: str,
                       iType: int) -> tuple[int, str]:
        """验证签名, in the form LD/T 6001.5-2023 (§7, 数字证书接口函数测试) gives:
        ``PKI_VerifySign(char* pUserPin, char* pCert, char* pClearText, char* pSignature,
        int iType, char* pOutInfo)``.

        Only the prototype is public; what each parameter holds is our ASSUMPTION
        (docs/national-interface.md): pCert is the signer's certificate (PEM, or its DER as
        hex or base64); empty = the certificate of the card in iType (EF 0018), read after
        the PKI user PIN when pUserPin is given (as PKI_SignData). pClearText's GBK bytes are
        the data; pSignature is r‖s (128 hex, PKI_SignData's output) or a DER SEQUENCE {r, s}
        in hex. 0 and empty when it verifies; −22 when it does not; −23 for a malformed
        pSignature or pCert; −1 without the PKI application (not a 3.0 card).
        """
        def body() -> str:
            from sbcard.national import pki  # inside the call: nothing raises out

            return pki.verify_sign(lambda: self._card(iType), pUserPin, pCert, pClearText,
                                   pSignature)

        return self._call("PKI_VerifySign", body, pin=True)

    # -- PIN --------------------------------------------------------------------------------
    def _guarded_status(self, channel: ApduChannel) -> Any:
        select_ssse(channel)
        status = pin_status(channel)
        if status.blocked:
            raise NationalError(codes.PIN_LOCKED)
        if self.config.pin_guard and status.tries_left == 1:
            raise NationalError(codes.PIN_CANCELLED,
                                "用户取消密码输入：仅剩1次机会，为防止锁卡未提交密码"
                                "（配置 pin.guard=false 可关闭此保护）")
        return status

    def iVerifyPIN(self, iType: int) -> tuple[int, str]:
        """校验密码: the PIN from the configured PIN source; −51 with tries left, −52 locked."""
        def body() -> str:
            with self._card(iType) as channel:
                status = self._guarded_status(channel)
                source = self._pins()
                if source.on_reader:                 # the reader's keypad checks it
                    verify_on_pin_pad(self._link_of[id(channel)])
                    return ""
                tries = "" if status.tries_left is None else f"（剩余{status.tries_left}次）"
                pin = source.get_pin("请输入密码", description=f"社保卡密码校验{tries}")
                channel.check(cmds.verify(_pin_block(pin)))
            return ""

        return self._call("iVerifyPIN", body, pin=True)

    def iChangePIN(self, iType: int) -> tuple[int, str]:
        """修改密码: old PIN, new PIN twice (−34 when they differ); −51 for a wrong old PIN.
        On the PIN pad the reader collects all three and builds CHANGE PIN itself."""
        def body() -> str:
            with self._card(iType) as channel:
                self._guarded_status(channel)
                source = self._pins()
                if source.on_reader:                 # the reader's keypad: PIN_MODIFY
                    change_on_pin_pad(self._link_of[id(channel)])
                    return ""
                old = source.get_pin("请输入原密码")
                new = source.get_pin("请输入新密码")
                again = source.get_pin("请再次输入新密码")
                if new != again:
                    raise NationalError(codes.PIN_DIFFERENT)
                channel.check(cmds.change_pin(_pin_block(old), _pin_block(new)))
            return ""

        return self._call("iChangePIN", body, pin=True)

    def _check_card_info(self, channel: ApduChannel, card_info: str) -> CardContext:
        """pCardInfo = ``卡识别码|卡号|``: compared with the card (−22 when it differs)."""
        info = select_ssse(channel)
        ef05 = read_records(channel, EF05, EF05.tags)
        fields = split_fields(card_info.strip())
        if len(fields) < 2:
            raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                "（pCardInfo 应为 卡识别码|卡号|）")
        card_id = next((r.value for r in ef05 if r.tag == 0x01), b"").hex().upper()
        card_no = next((r.value for r in ef05 if r.tag == 0x07), b"").decode(
            "ascii", "replace")
        if fields[0].upper() != card_id or fields[1].upper() != card_no[:len(fields[1])].upper() \
                or len(fields[1]) < 9:
            raise NationalError(codes.CARD_MISMATCH)
        return context_of(channel.atr, info, ef05)

    def _new_pin_twice(self) -> str:
        source = self._pins()
        new = source.get_pin("请输入新密码")
        if source.get_pin("请再次输入新密码") != new:
            raise NationalError(codes.PIN_DIFFERENT)
        return new

    def _refuse_pin_pad_for_reload(self) -> None:
        """A reload's new PIN reaches the card enciphered under STK with a MAC (part 5 §6.8,
        spec §5.7), made by the PSAM or HSM from the PIN; a PC/SC part 10 pad only puts
        typed digits in clear into an APDU. Refused before the card is touched."""
        if self._pins().on_reader:
            raise NationalError(codes.UNSUPPORTED, RELOAD_REFUSED)

    def _keys_or_psam_error(self) -> KeySource:
        keys = self.key_source()
        if keys is None:
            raise NationalError(codes.NO_PSAM)
        return keys

    def iReloadPIN(self, iType: int, pCardInfo: str) -> tuple[int, str]:
        """重置密码: PUK external authentication, new PIN twice, 84 24 00 01 with STK (§5.7)."""
        def body() -> str:
            self._refuse_pin_pad_for_reload()
            keys = self._keys_or_psam_error()
            with self._card(iType) as channel:
                ctx = self._check_card_info(channel, pCardInfo)
                new = self._new_pin_twice()
                reload_pin(channel, keys, ctx, Pin(new), allow_trivial=True)
            return ""

        return self._call("iReloadPIN", body)

    def iUnblockPIN(self, iType: int, pCardInfo: str) -> tuple[int, str]:
        """解锁密码: PUK external authentication, 84 24 00 00 with STK (the PIN stays)."""
        def body() -> str:
            keys = self._keys_or_psam_error()
            with self._card(iType) as channel:
                ctx = self._check_card_info(channel, pCardInfo)
                unblock_pin(channel, keys, ctx)
            return ""

        return self._call("iUnblockPIN", body)

    # -- PIN reload / unblock through the HSM steps -------------------------------------------
    def _puk_step1(self, family: str, itype: int, card_info: str) -> str:
        if family == "reload":
            self._refuse_pin_pad_for_reload()
        with self._card(itype, keep=family) as channel:
            pending = self._pending_for(channel)
            ctx = self._check_card_info(channel, card_info)
            original = channel.check(cmds.get_challenge(8)).data
            factor = channel.check(cmds.get_challenge(8)).data
            pending.ctx = ctx
            return join_fields(f"{ctx.algorithm.algorithm_id:02X}", HSM_PUK,
                               factor.hex().upper(), original.hex().upper())

    def _puk_step2(self, family: str, pkey: str) -> str:
        with self._continue(family, 2, last=False) as pending:
            channel = pending.channel
            ext = _hex(split_fields(pkey.strip())[0] if pkey.strip() else "", 16, "pKey")
            channel.check(CommandApdu(0x00, 0x82, 0x00, KEY_PUK, ext,
                                      name="EXTERNAL AUTHENTICATE PUK"))
            factor = channel.check(cmds.get_challenge(8)).data
            assert pending.ctx is not None
            alg = f"{pending.ctx.algorithm.algorithm_id:02X}"
            if family == "unblock":
                return join_fields(alg, HSM_STK, factor.hex().upper(), "8424000004", "")
            new = self._new_pin_twice()
            block = _pin_block(new)
            size = pending.ctx.algorithm.block_size
            body = 1 + len(block)           # LD ‖ PIN, then 80 00… unless aligned (§5.7)
            enc_len = body if body % size == 0 else (body + size) // size * size
            header = f"84240001{enc_len + 4:02X}"
            pending.state["header"] = header
            return join_fields(alg, HSM_STK, factor.hex().upper(), header, new)

    def _puk_step3(self, family: str, pkey: str) -> str:
        with self._continue(family, 3, last=True) as pending:
            header = "8424000004" if family == "unblock" else pending.state["header"]
            text = "".join(pkey.split()).rstrip("|").upper()
            if text.startswith(header[:8]):      # the whole APDU given: keep its data part
                text = text[10:]
            data = _hex(text, (int(header[8:10], 16),), "pKey")
            pending.channel.check(CommandApdu(0x84, 0x24, 0x00, int(header[6:8], 16), data,
                                              name="PIN RELOAD" if family == "reload"
                                              else "PIN UNBLOCK"))
            return ""

    def iReloadPIN_HSM_Step1(self, iType: int, pCardInfo: str) -> tuple[int, str]:
        """重置密码加密机第一步 → ``算法标识|0090|过程因子|原始信息|`` (PUK external auth)."""
        return self._call("iReloadPIN_HSM_Step1",
                          lambda: self._puk_step1("reload", iType, pCardInfo))

    def iReloadPIN_HSM_Step2(self, pKey: str) -> tuple[int, str]:
        """pKey = the HSM's ``外部认证数据‖原始信息`` (32 hex) → ``算法标识|0173|过程因子|
        84240001Lc|新PIN|`` (the new PIN from the PIN source, for the HSM to encipher)."""
        return self._call("iReloadPIN_HSM_Step2", lambda: self._puk_step2("reload", pKey),
                          pin=True)

    def iReloadPIN_HSM_Step3(self, pKey: str) -> tuple[int, str]:
        """pKey = the HSM's enciphered PIN ‖ MAC (40 hex for SM4, 24 for DES), or the whole
        APDU; sends ``84 24 00 01``."""
        return self._call("iReloadPIN_HSM_Step3", lambda: self._puk_step3("reload", pKey),
                          pin=True)

    def iUnblockPIN_HSM_Step1(self, iType: int, pCardInfo: str) -> tuple[int, str]:
        """解锁密码加密机第一步 → ``算法标识|0090|过程因子|原始信息|``."""
        return self._call("iUnblockPIN_HSM_Step1",
                          lambda: self._puk_step1("unblock", iType, pCardInfo))

    def iUnblockPIN_HSM_Step2(self, pKey: str) -> tuple[int, str]:
        """pKey (32 hex) → ``算法标识|0173|过程因子|8424000004||``."""
        return self._call("iUnblockPIN_HSM_Step2", lambda: self._puk_step2("unblock", pKey))

    def iUnblockPIN_HSM_Step3(self, pKey: str) -> tuple[int, str]:
        """pKey = the MAC (8 hex) or the whole APDU (18 hex); sends ``84 24 00 00 04``."""
        return self._call("iUnblockPIN_HSM_Step3", lambda: self._puk_step3("unblock", pKey))


def _format_files(channel: ApduChannel, groups: list[tuple[str, list[tuple[int, int]]]],
                  keys: KeySource | None, ctx: CardContext | None) -> str:
    """The iReadCard output for ``groups``: ``SSSEEF05|v1|v2|$…`` (RKSSSE when asked)."""
    out = []
    for ef, wanted in groups:
        spec = EF05 if ef == "EF05" else EF06
        try:
            records = read_records(channel, spec, spec.tags)
        except SecurityStatusError:
            if keys is None or ctx is None:
                raise
            external_authenticate(channel, keys, ctx, KEY_RKSSSE, precheck=False)
            records = read_records(channel, spec, spec.tags)
        values = []
        for tag, nth in wanted:
            found = [r for r in records if r.tag == tag]
            if len(found) < nth:
                raise NationalError(-0x6A83, f"{codes.message(-0x6A83)}"
                                             f"（SSSE{ef} {tag:02X}:{nth}）")
            el = element(ef, tag)
            value = json_field(el.key, el.decode_value(found[nth - 1].value).value)
            text = "" if value is None else str(value)
            values.append(text.replace("-", "") if el.fmt == "date" else text)
        out.append(join_fields(f"SSSE{ef}", *values) + "$")
    return "".join(out)


def _address_parts(addr: str) -> list[Any]:
    """pFileAddr in order: SSSE groups as ``_parse_file_address`` gives them, DF01–DF07
    groups as ``dffiles.DfGroup`` (all checked before the card is touched)."""
    parts: list[Any] = []
    for part in addr.strip().split("$"):
        fields = split_fields(part.strip())
        if not fields:
            continue
        if dffiles.is_df_file(fields[0]):
            group = dffiles.parse_groups(part + "$")[0]
            dffiles.check_address([group])
            parts.append(group)
        elif dffiles.is_file_group(fields[0]):
            # SSSEEF07/EF08 and a region's files: the session profile resolves them
            parts.append(dffiles.parse_groups(part + "$")[0])
        else:
            parts.extend(_parse_file_address(part + "$"))
    if not parts:
        raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}（pFileAddr 为空）")
    return parts


def _parse_file_address(addr: str) -> list[tuple[str, list[tuple[int, int]]]]:
    """``SSSEEF05|01|07|$SSSEEF06|08|$`` → [("EF05", [(0x01, 1), (0x07, 1)]), …]."""
    groups = []
    for part in addr.strip().split("$"):
        fields = split_fields(part.strip())
        if not fields:
            continue
        name = fields[0].strip().upper()
        if name not in ("SSSEEF05", "SSSEEF06"):
            raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}（{name}："
                                                "应为 SSSE 或 DF01–DF07 的文件）")
        wanted = []
        for item in fields[1:]:
            tag_hex, _, nth = item.strip().partition(":")
            try:
                wanted.append((int(tag_hex, 16), int(nth) if nth else 1))
            except ValueError:
                raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                    f"（{item}）") from None
        for tag, _ in wanted:
            if (name[4:], tag) not in BY_EF_TAG:
                raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}"
                                                    f"（{name} 没有记录 {tag:02X}）")
        groups.append((name[4:], wanted))
    if not groups:
        raise NationalError(codes.BAD_DATA, f"{codes.message(codes.BAD_DATA)}（pFileAddr 为空）")
    return groups


def _needs_rkssse(channel: ApduChannel, version: bytes) -> bool:
    """EF06 is behind RKSSSE: the public code's rule (规范版本 starts with '3'), or the card
    refuses a read of EF06 (a probe that changes nothing)."""
    if version[:1] == b"3":
        return True
    r = channel.send(cmds.read_record(0x08, sfi=EF06.sfi or 0, mode=RecordMode.FIRST_ID))
    return r.sw == SW.SECURITY_NOT_SATISFIED


def _pin_block(pin: str) -> bytes:

    check_digits(pin)
    text = pin + ("F" if len(pin) % 2 else "")
    return bytes.fromhex(text)


def _hex(text: str, sizes: int | tuple[int, ...], what: str) -> bytes:
    allowed = (sizes,) if isinstance(sizes, int) else sizes
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise NationalError(codes.BAD_CHARACTER) from None
    if len(data) not in allowed:
        raise NationalError(codes.DATA_LENGTH, f"{codes.message(codes.DATA_LENGTH)}"
                                               f"（{what}）")
    return data


def _call_logger(path: str | None) -> Callable[..., None]:
    """One line per call: function, code, milliseconds. Outputs are never logged (they hold
    names and ID numbers); failures log their code's message only. ``extra``: a line of
    sbcard's own (the card profile chosen by region)."""
    if not path:
        return lambda *_a: None
    lock = threading.Lock()

    def write(name: str, result: tuple[int, str], seconds: float, extra: str = "") -> None:
        code, _text = result
        note = "" if code == 0 else f" {codes.message(code) if code in codes.BY_CODE else ''}"
        if extra:
            note = f" {extra}"
        line = (f"{dt.datetime.now().isoformat(timespec='milliseconds')} {name} {code}"
                f" {seconds * 1000:.1f}ms{note}\n")
        with lock, contextlib.suppress(OSError), open_private(path) as f:   # 0600 always
            f.write(line)

    return write
