"""Answer-to-reset parsing (ISO 7816-3 §8): interface bytes, protocols, historical bytes, TCK."""

from __future__ import annotations

from dataclasses import dataclass, field

from sbcard.errors import BadInputError

# Fi and Di tables (ISO 7816-3 tables 7 and 8); None = RFU.
_FI = (372, 372, 558, 744, 1116, 1488, 1860, None, None, 512, 768, 1024, 1536, 2048, None, None)
_DI = (None, 1, 2, 4, 8, 16, 32, 64, 12, 20, None, None, None, None, None, None)


@dataclass(frozen=True)
class InterfaceGroup:
    """TAi, TBi, TCi, TDi of one group i (None where absent)."""

    index: int
    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None


@dataclass(frozen=True)
class Atr:
    raw: bytes
    ts: int
    t0: int
    groups: tuple[InterfaceGroup, ...]
    historical: bytes
    tck: int | None
    warnings: tuple[str, ...] = field(default=())

    @property
    def convention(self) -> str:
        return "direct" if self.ts == 0x3B else "inverse"

    @property
    def protocols(self) -> tuple[int, ...]:
        """Protocols offered: T=0 is implicit when no TD says otherwise."""
        found = [g.td & 0x0F for g in self.groups if g.td is not None]
        if not found:
            return (0,)
        ordered = []
        for t in found:
            if t not in ordered and t != 15:
                ordered.append(t)
        return tuple(ordered) or (0,)

    @property
    def fi_di(self) -> tuple[int | None, int | None]:
        ta1 = self.groups[0].ta if self.groups else None
        if ta1 is None:
            return 372, 1
        return _FI[ta1 >> 4], _DI[ta1 & 0x0F]

    @property
    def guard_time_extra(self) -> int:
        tc1 = self.groups[0].tc if self.groups else None
        return tc1 or 0

    @classmethod
    def parse(cls, raw: bytes) -> Atr:
        if len(raw) < 2:
            raise BadInputError(f"ATR is {len(raw)} byte(s); it needs at least TS and T0")
        ts = raw[0]
        if ts not in (0x3B, 0x3F):
            raise BadInputError(f"ATR TS byte is {ts:02X}; it must be 3B (direct) or 3F (inverse)")
        t0 = raw[1]
        pos = 2
        groups = []
        y = t0 >> 4
        index = 1
        while True:
            values: dict[str, int] = {}
            for bit, name in ((0x1, "ta"), (0x2, "tb"), (0x4, "tc"), (0x8, "td")):
                if y & bit:
                    if pos >= len(raw):
                        missing = f"T{name[1].upper()}{index}"
                        raise BadInputError(f"ATR ends inside the interface bytes ({missing})")
                    values[name] = raw[pos]
                    pos += 1
            groups.append(InterfaceGroup(index, **values))
            td = values.get("td")
            if td is None:
                break
            y = td >> 4
            index += 1
        k = t0 & 0x0F
        if pos + k > len(raw):
            raise BadInputError(
                f"ATR announces {k} historical bytes but only {len(raw) - pos} follow"
            )
        historical = raw[pos:pos + k]
        pos += k
        protocols = {g.td & 0x0F for g in groups if g.td is not None}
        needs_tck = bool(protocols - {0})
        tck = None
        warnings: list[str] = []
        if needs_tck:
            if pos >= len(raw):
                warnings.append("TCK missing although a protocol other than T=0 is offered")
            else:
                tck = raw[pos]
                pos += 1
                check = 0
                for b in raw[1:pos]:
                    check ^= b
                if check != 0:
                    warnings.append(f"TCK {tck:02X} is wrong (XOR of T0..TCK is {check:02X})")
        if pos < len(raw):
            warnings.append(f"{len(raw) - pos} extra byte(s) after the ATR")
        return cls(raw=bytes(raw), ts=ts, t0=t0, groups=tuple(groups), historical=historical,
                   tck=tck, warnings=tuple(warnings))
