"""Read the card's identification and holder data (EF05, EF06) in as few APDUs as possible.

Flow (spec §4.3 A/B): SELECT SSSE by name (FCI → algorithm) → EF05 and EF06 each with one
READ RECORD "records P1..last" by SFI with the exact Le the card model gives (3 APDUs in all
on cards that support it; a card whose records differ answers 6Cxx and the T=0 layer
re-sends, or 6700 and Le 00 is asked). Cards without the
multi-record mode get one READ RECORD per record identifier with the exact Le. Records are
matched by identifier (tag), never by number, because 1.0 cards lack 姓名扩展 (4E) and their
record numbers differ.

On 3.0 cards EF06 may answer 6982 (it needs RKSSSE, card key 0A). With an ``authenticate``
callback (a key source, see ``sbcard.keys``) the reader authenticates and retries once;
without one the report carries EF05 and says what is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sbcard.apdu import commands as cmds
from sbcard.apdu import tlv
from sbcard.apdu.atr import Atr
from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import ResponseApdu
from sbcard.apdu.commands import RecordMode
from sbcard.apdu.sw import SW, CardError, SecurityStatusError
from sbcard.card import codes
from sbcard.card.codecs import Decoded, join_name, json_value
from sbcard.card.elements import ELEMENTS, RawRecord, element, elements_of, split_records
from sbcard.card.filesystem import EF05, EF06, EF07, EF08, KEY_RKSSSE, SSSE, EfSpec
from sbcard.card.profiles import CardProfile, profile_for
from sbcard.card.profiles.sections import Addressing
from sbcard.hexutil import is_ascii_digits
from sbcard.keys.base import CardContext, KeySource
from sbcard.ops.auth import context_from, external_authenticate

#: Status words meaning "this card does not do multi-record READ RECORD": fall back.
_NO_MULTI = frozenset({SW.WRONG_P1P2, SW.FUNCTION_NOT_SUPPORTED, SW.INS_NOT_SUPPORTED,
                       SW.WRONG_DATA, SW.WRONG_LENGTH, SW.WRONG_OFFSET, SW.INCOMPATIBLE_FILE})
#: Status words with which a COS refuses SFI-referenced READ RECORD/BINARY (or does not know
#: the SFI): read the file the way every public trace does instead — SELECT EF, then P2
#: referring to the current EF (sscard-spec §4.3 A; SI_3rdCard docs/加密机方式指令流.txt).
_NO_SFI = frozenset({SW.FUNCTION_NOT_SUPPORTED, SW.FILE_NOT_FOUND, SW.RECORD_NOT_FOUND,
                     SW.WRONG_P1P2, SW.WRONG_DATA, SW.INCOMPATIBLE_FILE, SW.NO_CURRENT_EF,
                     SW.WRONG_OFFSET})


class _SfiRefused(Exception):
    def __init__(self, sw: int) -> None:
        self.sw = sw


@dataclass(frozen=True)
class SsseInfo:
    fci: bytes
    algorithm_id: int | None       # from FCI 9F0C/86; None when absent


def select_ssse(channel: ApduChannel) -> SsseInfo:
    response = channel.check(cmds.select_by_name(SSSE.df_name))
    algorithm_id = None
    try:
        objects = tlv.parse(response.data)
        prop = tlv.find(objects, 0x9F0C)
        if prop is not None:
            alg = tlv.find(list(tlv.parse(prop.value)), 0x86)
            if alg is not None and len(alg.value) == 1:
                algorithm_id = alg.value[0]
    except tlv.TlvError:
        pass
    return SsseInfo(response.data, algorithm_id)


def _send_select_ef(channel: ApduChannel, ef: EfSpec) -> ResponseApdu:
    """SELECT EF by FID in the current DF: P1=02 (part 5, the spec's form, ``00A4020002EF05``
    in the traces); a COS that refuses it gets P1=00 (``00A4000002EF05``, many drivers)."""
    r = channel.send(cmds.select_ef(ef.fid))
    if r.sw in (SW.WRONG_P1P2, SW.FILE_NOT_FOUND, SW.FUNCTION_NOT_SUPPORTED):
        r = channel.send(cmds.select_ef(ef.fid, p1=0x00))
    return r


def select_ef(channel: ApduChannel, ef: EfSpec) -> None:
    r = _send_select_ef(channel, ef)
    if not r.ok:
        raise CardError.for_sw(r.sw, f"SELECT EF {ef.name}")


def _addressings(first: Addressing) -> tuple[Addressing, ...]:
    return (first, Addressing.SELECT_EF if first is Addressing.SFI else Addressing.SFI)


def read_records(channel: ApduChannel, ef: EfSpec, tags: tuple[int, ...], *,
                 addressing: Addressing = Addressing.SFI) -> list[RawRecord]:
    """All records of a variable-record EF of the SSSE (current DF).

    ``addressing`` is tried first; when the card refuses it as an addressing problem
    (``_NO_SFI``), the other way is tried. 6982 (security) is never a reason to switch.
    """
    order = _addressings(addressing)
    for i, way in enumerate(order):
        try:
            return _read_records(channel, ef, tags, way)
        except _SfiRefused as refused:
            if i == len(order) - 1:
                raise CardError.for_sw(refused.sw, f"READ RECORD {ef.name}") from None
    raise AssertionError("unreachable")


def _read_records(channel: ApduChannel, ef: EfSpec, tags: tuple[int, ...],
                  way: Addressing) -> list[RawRecord]:
    assert ef.sfi is not None
    if way is Addressing.SELECT_EF:
        try:
            select_ef(channel, ef)
        except CardError as exc:
            if exc.sw in _NO_SFI:
                raise _SfiRefused(exc.sw) from None
            raise
    sfi = ef.sfi if way is Addressing.SFI else 0
    response = _read_all(channel, ef, tags, sfi)
    if response.ok:
        return split_records(response.data)
    if response.sw not in _NO_MULTI | _NO_SFI:
        raise CardError.for_sw(response.sw, f"READ RECORD {ef.name} (all records)")
    records = []
    not_found = 0
    for tag in tags:
        el = element(ef.name, tag)
        r = channel.send(cmds.read_record(tag, sfi=sfi, mode=RecordMode.FIRST_ID,
                                          le=el.record_len))
        if r.sw == SW.RECORD_NOT_FOUND:
            not_found += 1
            continue
        if not r.ok:
            if r.sw in _NO_SFI:
                raise _SfiRefused(r.sw)
            raise CardError.for_sw(r.sw, f"READ RECORD {ef.name} tag {tag:02X}")
        records.extend(split_records(r.data))
    if not records and not_found:
        # Not one record found: the addressing, not the file, is what the card refused.
        raise _SfiRefused(SW.RECORD_NOT_FOUND)
    return records


def _read_all(channel: ApduChannel, ef: EfSpec, tags: tuple[int, ...],
              sfi: int) -> ResponseApdu:
    """READ RECORD "records 1..last" with the exact Le the card model gives (each record is
    tag, length, value: ``record_len``), so a card that wants the exact Le (the spec's T=0
    behaviour, part 5 §6.10.4) answers at once instead of 6Cxx and a re-send. A card whose
    records differ from the model still gets read: 6Cxx is re-sent with its length by the
    T=0 layer; 6700, or an answer whose last record is cut short, asks again with Le 00."""
    exact = sum(element(ef.name, tag).record_len for tag in tags)
    if not 0 < exact < 256:
        return channel.send(cmds.read_record(1, sfi=sfi, mode=RecordMode.FROM_P1))
    response = channel.send(cmds.read_record(1, sfi=sfi, mode=RecordMode.FROM_P1, le=exact))
    cut = response.ok and any(r.warnings for r in split_records(response.data))
    if response.sw == SW.WRONG_LENGTH or cut:
        response = channel.send(cmds.read_record(1, sfi=sfi, mode=RecordMode.FROM_P1))
    return response


def read_record_by_tag(channel: ApduChannel, ef: EfSpec, tag: int, *,
                       addressing: Addressing = Addressing.SFI) -> ResponseApdu:
    """One record by identifier, exact Le, with the same addressing fallback (SW not checked
    beyond the fallback: the caller decides what 6A83 or 6982 means)."""
    assert ef.sfi is not None
    le = element(ef.name, tag).record_len
    last = ResponseApdu(b"", 0x6A, 0x83)  # record not found
    for way in _addressings(addressing):
        if way is Addressing.SELECT_EF:
            selected = _send_select_ef(channel, ef)
            if not selected.ok:
                last = selected
                continue
        sfi = ef.sfi if way is Addressing.SFI else 0
        last = channel.send(cmds.read_record(tag, sfi=sfi, mode=RecordMode.FIRST_ID, le=le))
        if last.sw not in _NO_SFI:
            return last
    return last


@dataclass
class CardReport:
    """Everything ``sbcard read`` shows; ``fields`` keyed by the stable JSON keys."""

    atr: bytes
    algorithm_id: int | None
    algorithm_source: str
    fields: dict[str, Decoded]
    warnings: list[str] = field(default_factory=list)
    holder_read: bool = True
    apdu_count: int = 0
    raw_records: dict[str, list[RawRecord]] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        d = self.fields.get(key)
        return None if d is None else d.value

    @property
    def region_code(self) -> str | None:
        card_id = self.value("card_id")
        region = getattr(card_id, "region", None)
        return region if region and is_ascii_digits(region) else None

    @property
    def profile(self) -> CardProfile:
        """The built-in card profile the card's own data chooses (version, FCI algorithm)."""
        return profile_for(self.to_json())

    @property
    def algorithm_name(self) -> str | None:
        if self.algorithm_id is None:
            return None
        found = codes.algorithm(f"{self.algorithm_id:02X}")
        return found[1] if found else f"unknown ({self.algorithm_id:02X})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"region_code": self.region_code}
        for el in ELEMENTS:
            if el.key == "name_ext":
                continue
            out[el.key] = json_field(el.key, self.value(el.key))
        out["atr"] = self.atr.hex().upper()
        out["atr_historical"] = self.atr_historical.hex().upper()
        out["algorithm"] = self.algorithm_name
        out["warnings"] = list(self.warnings)
        return out

    @property
    def atr_historical(self) -> bytes:
        try:
            return Atr.parse(self.atr).historical
        except ValueError:
            return b""


def json_field(key: str, value: Any) -> Any:
    """A decoded field as ``read --json`` shows it (card_id hex, init_org digits, ISO dates)."""
    if value is None:
        return None
    if key == "card_id" and hasattr(value, "hex"):
        return value.hex() if not isinstance(value, bytes) else value.hex().upper()
    if key == "init_org" and hasattr(value, "digits"):
        return value.digits
    if isinstance(value, dt.date):
        return value.isoformat()
    return json_value(value)


def read_card(channel: ApduChannel, *, keys: KeySource | None = None,
              today: dt.date | None = None,
              addressing: Addressing = Addressing.SFI) -> CardReport:
    """Read EF05 and EF06 and decode every element; warnings never stop the read.

    ``keys`` is used only when the card asks for it (EF06 behind RKSSSE on 3.0 cards).
    ``addressing`` is the first way files are named (the other is the fallback).
    """
    start = channel.apdu_count
    with channel.exclusive():
        info = select_ssse(channel)
        ef05 = read_records(channel, EF05, EF05.tags, addressing=addressing)
        holder_read = True
        warnings: list[str] = []
        try:
            ef06 = read_records(channel, EF06, EF06.tags, addressing=addressing)
        except SecurityStatusError:
            if keys is None:
                ef06 = []
                holder_read = False
                warnings.append(
                    "持卡人基本信息 (EF06) needs external authentication with RKSSSE (card key 0A) "
                    "on this card: give a key source (--keys FILE, --psam READER or --hsm-command)"
                )
            else:
                ctx = context_of(channel.atr, info, ef05)
                external_authenticate(channel, keys, ctx, KEY_RKSSSE)
                ef06 = read_records(channel, EF06, EF06.tags, addressing=addressing)
    report = decode_records(ef05, ef06, channel.atr, info, warnings, today=today,
                            holder_read=holder_read)
    report.apdu_count = channel.apdu_count - start
    return report


def decode_records(ef05: list[RawRecord], ef06: list[RawRecord], atr: bytes, info: SsseInfo,
                   warnings: list[str], *, today: dt.date | None = None,
                   holder_read: bool = True) -> CardReport:
    fields: dict[str, Decoded] = {}
    by_tag: dict[tuple[str, int], RawRecord] = {}
    for ef_name, records in (("EF05", ef05), ("EF06", ef06)):
        for rec in records:
            if (ef_name, rec.tag) in by_tag:
                warnings.append(f"{ef_name}: a second record with tag {rec.tag:02X} ignored")
                continue
            by_tag[(ef_name, rec.tag)] = rec
            warnings.extend(f"{ef_name}: {w}" for w in rec.warnings)
    for el in ELEMENTS:
        found = by_tag.get((el.ef, el.tag))
        if found is None:
            continue
        decoded = el.decode_value(found.value)
        if len(found.value) != el.length:
            decoded = Decoded(decoded.value, (*decoded.warnings,
                              f"field is {len(found.value)} bytes, the spec says {el.length}"))
        fields[el.key] = decoded
    if ("EF06", 0x09) in by_tag:
        ext = by_tag.get(("EF06", 0x4E))
        fields["name"] = join_name(by_tag[("EF06", 0x09)].value, ext.value if ext else None)
    for key, d in fields.items():
        el = next(e for e in ELEMENTS if e.key == key)
        warnings.extend(w if w.startswith(el.zh) else f"{el.zh} {el.en}: {w}"
                        for w in d.warnings)
    if "spec_version" in fields and fields["spec_version"].value is None:
        warnings.append("规范版本 spec version: empty, treated as 1.0x (reader interface §10.2)")
    known = {(e.ef, e.tag) for e in ELEMENTS}
    for (ef_name, tag) in by_tag:
        if (ef_name, tag) not in known:
            warnings.append(f"{ef_name}: unknown record tag {tag:02X} (local extension?)")
    if holder_read:
        for el in elements_of("EF06"):
            if el.key != "name_ext" and el.key not in fields:
                warnings.append(f"{el.zh} {el.en}: record {el.tag:02X} missing")
    for el in elements_of("EF05"):
        if el.key not in fields:
            warnings.append(f"{el.zh} {el.en}: record {el.tag:02X} missing")

    algorithm_id, source = info.algorithm_id, "FCI 9F0C/86"
    if algorithm_id is None:
        region = getattr(fields.get("card_id", Decoded(None)).value, "region", "") or ""
        algorithm_id = 0x02 if region.startswith("11") else 0x01
        source = "region rule (no 9F0C/86 in FCI)"
    expiry = fields.get("expiry_date")
    if (expiry is not None and isinstance(expiry.value, dt.date)
            and expiry.value < (today or dt.date.today())):
        warnings.append(f"卡有效期 expiry: the card expired on {expiry.value.isoformat()}")
    return CardReport(atr=atr, algorithm_id=algorithm_id, algorithm_source=source,
                      fields=fields, warnings=warnings, holder_read=holder_read,
                      raw_records={"EF05": ef05, "EF06": ef06})


def context_of(atr: bytes, info: SsseInfo, ef05: list[RawRecord]) -> CardContext:
    """Key-derivation context from the ATR, the FCI and EF05's 卡的识别码."""
    card_id = next((r.value for r in ef05 if r.tag == 0x01), b"")
    region = card_id[:3].hex() if len(card_id) >= 3 else None
    algorithm_id = info.algorithm_id
    if algorithm_id is None:
        algorithm_id = 0x02 if region and region.startswith("11") else 0x01
    return context_from(atr, region, algorithm_id)


def read_context(channel: ApduChannel, *,
                 addressing: Addressing = Addressing.SFI) -> CardContext:
    """SELECT SSSE and read 卡的识别码: what key derivation needs, in two APDUs (three when
    the card wants its EF selected first)."""
    info = select_ssse(channel)
    r = read_record_by_tag(channel, EF05, 0x01, addressing=addressing)
    if not r.ok:
        raise CardError.for_sw(r.sw, "READ RECORD EF05 卡的识别码")
    return context_of(channel.atr, info, split_records(r.data))


def _read_binary_first(channel: ApduChannel, ef: EfSpec, chunk: int,
                       addressing: Addressing) -> ResponseApdu:
    """The first chunk of a transparent EF, by SFI or after SELECT EF (with fallback)."""
    r = ResponseApdu(b"", 0x6A, 0x82)
    for way in _addressings(addressing):
        if way is Addressing.SELECT_EF:
            r = _send_select_ef(channel, ef)
            if not r.ok:
                continue
            r = channel.send(cmds.read_binary(0, chunk))
        else:
            r = channel.send(cmds.read_binary(0, chunk, sfi=ef.sfi))
        if r.sw not in _NO_SFI:
            return r
    return r


def read_transparent(channel: ApduChannel, ef: EfSpec, *, keys: KeySource | None = None,
                     chunk: int = 0xF0, addressing: Addressing = Addressing.SFI) -> bytes:
    """A transparent SSSE file read whole (EF07 指纹 0x300 bytes, EF08 相片 0x1000 bytes,
    both read key RKSSSE = card key 0A, 人社信息函〔2012〕37号 table 3): SELECT SSSE, READ
    BINARY in chunks (sscard-spec §4 C: ``00B0 0000 F0…`` after external authentication
    with RKSSSE [S13][S14]). The first read is tried without authentication; on 6982 the
    card is authenticated with ``keys`` and the read repeated (SecurityStatusError without)."""
    with channel.exclusive():
        info = select_ssse(channel)
        first = _read_binary_first(channel, ef, chunk, addressing)
        if first.sw == SW.SECURITY_NOT_SATISFIED:
            if keys is None:
                raise SecurityStatusError(SW.SECURITY_NOT_SATISFIED,
                                          f"READ BINARY {ef.name} ({ef.zh} needs RKSSSE)")
            ef05 = read_records(channel, EF05, EF05.tags, addressing=addressing)
            external_authenticate(channel, keys, context_of(channel.atr, info, ef05), KEY_RKSSSE)
            first = _read_binary_first(channel, ef, chunk, addressing)
        if not first.ok:
            raise CardError.for_sw(first.sw, f"READ BINARY {ef.name}")
        data = bytearray(first.data)
        select_ef(channel, ef)
        while len(data) < ef.size:
            want = min(chunk, ef.size - len(data))
            r = channel.send(cmds.read_binary(len(data), want))
            if not r.ok and r.sw != SW.END_OF_FILE:
                raise CardError.for_sw(r.sw, f"READ BINARY {ef.name} @{len(data)}")
            if not r.data:
                break
            data += r.data
    return bytes(data)


def read_photo(channel: ApduChannel, *, keys: KeySource | None = None,
               chunk: int = 0xF0, addressing: Addressing = Addressing.SFI) -> bytes:
    """EF08 数字相片 (4096 bytes, RKSSSE), :func:`read_transparent`.

    The file is 00- or FF-padded after the image; the image's own length (JPEG EOI, BMP
    size field) says where it ends, never the padding (``photo_length``).
    """
    data = read_transparent(channel, EF08, keys=keys, chunk=chunk, addressing=addressing)
    return data[:photo_length(data)]


def read_fingerprint(channel: ApduChannel, *, keys: KeySource | None = None,
                     chunk: int = 0xF0, addressing: Addressing = Addressing.SFI) -> bytes:
    """EF07 指纹 (0x300 bytes from offset 0000, RKSSSE; notice table 9 gives it as "b" with
    no inner format, §8.1.3 only says which fingers are taken): the whole file, as stored."""
    return read_transparent(channel, EF07, keys=keys, chunk=chunk, addressing=addressing)


def photo_length(data: bytes) -> int:
    """Where the image in EF08 ends: a JPEG at its EOI marker (FFD9, found by walking the
    segments, ITU-T T.81 §B.1), a BMP by its header's file-size field (``BM`` ‖ size, u32
    little endian); anything else, or an image whose end cannot be found, is kept whole (the
    file size). A file of nothing but padding (all 00 or all FF) holds no photo: 0.

    EF08 holds a JPEG or BMP compressed to fit 4096 bytes (人社信息函〔2012〕37号 §8.1.4). The
    padding is never stripped to find the end: that would cut a BMP whose last pixels are
    black or white, and the first FFD9 in a JPEG may end an Exif thumbnail in APP1.
    """
    if not data.strip(b"\x00") or not data.strip(b"\xff"):
        return 0
    if data[:2] == b"\xff\xd8":
        eoi = _jpeg_end(data)
        if eoi is not None:
            return eoi
    if data[:2] == b"BM" and len(data) >= 6:
        size = int.from_bytes(data[2:6], "little")
        if 14 <= size <= len(data):
            return size
    return len(data)


def _jpeg_end(data: bytes) -> int | None:
    """Offset after the EOI that ends the JPEG: walk the segments, then the entropy-coded
    scan (where FF is followed by 00 or a restart marker), so an FFD9 inside a segment
    (a thumbnail in APP1) is not taken for the end. None when no EOI is found."""
    pos = 2
    n = len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:                           # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            pos += 2
            continue
        if pos + 4 > n:
            return None
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            return None
        pos += 2 + length
        if marker == 0xDA:                           # start of scan: entropy-coded data
            while pos + 1 < n:
                if data[pos] == 0xFF and data[pos + 1] != 0x00 and not (
                        0xD0 <= data[pos + 1] <= 0xD7):
                    break
                pos += 1
            else:
                return None
    return None
