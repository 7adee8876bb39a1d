"""The application DFs DF01–DF07 of a simulated card, built from ``sbcard.card.dfs``.

Which DFs a card has is the profile's ``dfs`` list plus the persona's ``[df_records] include``.
Every record file is personalised with one record per item of 人社信息函〔2012〕37号 table 9, in
the table's order (empty fields: cn all F, an all 00, notice §7); cyclic files start empty;
the reserved transparent files (DF01 EF16–EF1A, 0x128 bytes) start as zeros. Access rules are
the notice's tables 4–8 (``EfSpec.read/write``), enforced by the card OS like the SSSE's:
"PIN 或 RKn" = a verified PIN or EXTERNAL AUTHENTICATE with the DF's key; "PIN & RK1DF04"
both; writes need the file's UK key by EXTERNAL AUTHENTICATE (reader-interface spec §3.1.3
step 6) or a MAC under it (secure messaging, part 4 §8.2); DF04 EF08 "不允许改写" never.

Persona values (``[df_records]``) are text in the national form (``sbcard.card.dftext``)::

    [df_records]
    include = ["DF05"]                     # DFs beyond the profile's
    "DF01EF0A.37" = "CHN"                  # item 37 (国籍)
    "DF01EF15.40:2" = "400^080901^某大学^"  # the 2nd 学位信息 record, its sub-items
    "DF02EF07" = ["2010101^20200101^20221231^某公司^"]   # cyclic records, newest first
    "DF01EF16" = "0102…"                   # transparent: hex
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sbcard.card import dftext
from sbcard.card.dfs import DF_BY_NAME, SUBITEMS, item
from sbcard.card.filesystem import DfSpec, Structure
from sbcard.errors import BadInputError
from sbcard.hexutil import parse_hex
from sbcard.sim.card_os import SimDF


def df_fci(spec: DfSpec) -> bytes:
    """FCI of a DF: 6F ‖ 84 DF name (the AID, or the application label for DF05/DF06)."""
    body = bytes((0x84, len(spec.df_name))) + spec.df_name
    return bytes((0x6F, len(body))) + body


@cache                            # a few hundred (file, item) pairs, the same for every card
def _default_record(file: str, tag: int) -> bytes:
    """The empty record of item ``tag`` (bytes: each card gets its own bytearray copy).
    Encoded once per process: re-encoding ~115 of them per simulated card was some 40 % of
    building it (docs/benchmarks.md, personalisation)."""
    el = item(file, tag)
    if (file, tag) in SUBITEMS:
        return el.encode_record_raw(dftext.item_value(file, el, ""))
    return el.encode_record(None)


def _records_of(file: str, spec_tags: tuple[int, ...], values: dict[str, Any]) -> list[bytearray]:
    out: list[bytearray] = []
    seen: dict[int, int] = {}
    for tag in spec_tags:
        seen[tag] = seen.get(tag, 0) + 1
        n = seen[tag]
        text = values.get(f"{file}.{tag:02X}:{n}")
        if text is None and n == 1:
            text = values.get(f"{file}.{tag:02X}")
        if text is None:
            out.append(bytearray(_default_record(file, tag)))
            continue
        el = item(file, tag)
        out.append(bytearray(el.encode_record_raw(dftext.item_value(file, el, str(text)))))
    return out


def df_names(profile_dfs: Any, values: dict[str, Any], origin: str) -> list[str]:
    names = list(profile_dfs or []) + list(values.get("include", []))
    for name in names:
        if name not in DF_BY_NAME:
            raise BadInputError(f"persona {origin}: no DF {name!r} (known: "
                                f"{', '.join(DF_BY_NAME)})")
    return list(dict.fromkeys(names))


def build_dfs(profile_dfs: Any, values: dict[str, Any], origin: str) -> list[SimDF]:
    """The simulated DFs: personalised from ``values`` (the persona's ``[df_records]``)."""
    names = df_names(profile_dfs, values, origin)
    files = {df + ef.name for df in names for ef in DF_BY_NAME[df].efs()}
    for key in values:
        if key != "include" and key.split(".")[0] not in files:
            raise BadInputError(f"persona {origin}: [df_records] {key!r} names no file of "
                                f"the card's DFs ({', '.join(names)})")
    built = []
    for name in names:
        spec = DF_BY_NAME[name]
        sim = SimDF.build(spec, None, df_fci(spec))
        for ef in sim.efs.values():
            file = name + ef.spec.name
            try:
                if ef.spec.structure in (Structure.VARIABLE_RECORDS, Structure.FIXED_RECORDS):
                    ef.records = _records_of(file, ef.spec.tags, values)
                elif ef.spec.structure is Structure.CYCLIC:
                    texts = values.get(file, [])
                    if not isinstance(texts, list) or len(texts) > ef.spec.record_count:
                        raise BadInputError(f"{file}: a list of at most "
                                            f"{ef.spec.record_count} records")
                    ef.records = [bytearray(dftext.record_bytes(file, str(t))) for t in texts]
                elif file in values:
                    content = parse_hex(str(values[file]), file)
                    if len(content) > ef.spec.size:
                        raise BadInputError(f"{file}: {len(content)} bytes, the file holds "
                                            f"{ef.spec.size}")
                    ef.data[:len(content)] = content
            except BadInputError as exc:
                raise BadInputError(f"persona {origin}: [df_records] {exc}") from None
        built.append(sim)
    return built
