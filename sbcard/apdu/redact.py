"""What must never appear in clear in a trace, a log or a dump, and how it is masked.

The rules are data: a command is matched by CLA (with the secure-messaging and channel bits
ignored) and INS, and its data field is masked whole, because PIN blocks, PIN-change blocks
and key loads have no public part worth showing. Responses are scanned for the BER-TLV tags
that carry a bank card number (PAN), which is shown as first 6 and last 4 digits.
"""

from __future__ import annotations

from dataclasses import dataclass

MASK_BYTE = "**"


@dataclass(frozen=True)
class SecretRule:
    cla: int | None          # None = any class byte
    ins: int
    why: str


#: Commands whose data field is secret (matched on CLA & 0xF0 and INS).
SECRET_COMMANDS: tuple[SecretRule, ...] = (
    SecretRule(None, 0x20, "VERIFY: PIN block"),
    SecretRule(None, 0x24, "CHANGE REFERENCE DATA / PIN reload: PIN block"),
    SecretRule(0x80, 0x5E, "CHANGE PIN: old and new PIN in clear"),
    SecretRule(0x80, 0xFA, "PSAM CIPHER DATA: may carry a PIN block to encrypt"),
    SecretRule(None, 0xD4, "WRITE KEY / CREATE KEY: key value"),
    SecretRule(0x80, 0x4A, "import session key"),
    SecretRule(0x80, 0xC2, "import key pair"),
    SecretRule(0x80, 0xC4, "PIN hash request: PIN block"),
)

#: BER-TLV tags holding a bank card number: 5A PAN, 57 track 2 equivalent, 9F6B track 2
#: data (BCD, PAN before the D separator), 56 track 1 data (ASCII: masked whole).
PAN_TAGS: frozenset[int] = frozenset({0x5A, 0x57, 0x9F6B, 0x56})
ASCII_TRACK_TAGS: frozenset[int] = frozenset({0x56})

#: The holder file EF06 (SFI 06) and the tags of its records that identify a person: 社会保障
#: 号码 08, 姓名 09, 姓名扩展 4E, 出生日期 0D (the same tags as sbcard/card/elements.py; a test
#: keeps the two equal). Masked in traces and dumps, which are made to be shared.
HOLDER_SFI = 0x06
HOLDER_FID = b"\xEF\x06"
HOLDER_TAGS: frozenset[int] = frozenset({0x08, 0x09, 0x4E, 0x0D})

#: Only responses that open with an EMV template are scanned: 70 record, 77 GPO format 2,
#: 6F FCI. Other answers (challenges, social-security records) are left as they are.
PAN_TEMPLATES: frozenset[int] = frozenset({0x70, 0x77, 0x6F})


def secret_rule(command: bytes) -> SecretRule | None:
    if len(command) < 2:
        return None
    cla, ins = command[0], command[1]
    for rule in SECRET_COMMANDS:
        if ins == rule.ins and (rule.cla is None or (cla & 0xF0) == rule.cla):
            return rule
    return None


def mask_command(command: bytes) -> str:
    """Hex of ``command`` with a secret data field replaced by ``**`` per byte."""
    if secret_rule(command) is None or len(command) <= 5:
        return command.hex().upper()
    lc = command[4]
    head = command[:5].hex().upper()
    data_len = min(lc, len(command) - 5)
    tail = command[5 + data_len:].hex().upper()
    return head + MASK_BYTE * data_len + tail


def mask_pan_digits(digits: str) -> str:
    """``6217001234567890123`` → ``621700*********0123``."""
    if len(digits) <= 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_response(response: bytes, before: bytes = b"") -> str:
    """Hex of a response with PAN values masked (``*`` for each hidden digit).

    ``before``: the earlier T=0 chunks of the same answer (61xx + GET RESPONSE), so a PAN
    split across chunks is found; a PAN cut by a chunk boundary is masked whole.
    """
    data, sw = response[:-2], response[-2:]
    whole = before + data
    text = whole.hex().upper()
    out = list(text)
    for tag, start, end, cut in _pan_spans(whole):
        nibbles = text[start * 2:end * 2]
        if cut or tag in ASCII_TRACK_TAGS:
            masked = "*" * len(nibbles)
        else:
            digits = nibbles.split("D")[0].rstrip("F")
            masked = mask_pan_digits(digits) + nibbles[len(digits):]
        out[start * 2:end * 2] = masked
    return "".join(out)[len(before) * 2:] + sw.hex().upper()


def _pan_spans(data: bytes) -> list[tuple[int, int, int, bool]]:
    """(tag, start, end, cut) of PAN values in a BER-TLV response whose first byte is an
    EMV template; tolerant of an answer cut short (``cut``: the value runs past the end)."""
    if not data or data[0] not in PAN_TEMPLATES:
        return []
    spans: list[tuple[int, int, int, bool]] = []
    _scan(data, 0, len(data), spans, 0)
    return spans


def _scan(data: bytes, pos: int, end: int, spans: list, depth: int) -> None:
    while pos < end and depth < 8:
        if data[pos] in (0x00, 0xFF):                 # padding between objects
            pos += 1
            continue
        first = data[pos]
        tag, pos = first, pos + 1
        if first & 0x1F == 0x1F:                      # multi-byte tag
            while pos < end and data[pos] & 0x80:
                tag, pos = (tag << 8) | data[pos], pos + 1
            if pos >= end:
                return
            tag, pos = (tag << 8) | data[pos], pos + 1
        if pos >= end:
            return
        length, pos = data[pos], pos + 1
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 3 or pos + count > end:
                return
            length, pos = int.from_bytes(data[pos:pos + count], "big"), pos + count
        stop = pos + length
        if tag in PAN_TAGS:
            spans.append((tag, pos, min(stop, end), stop > end))
        elif first & 0x20:                            # constructed: look inside
            _scan(data, pos, min(stop, end), spans, depth + 1)
        pos = stop


def mask_holder_records(data: bytes) -> str:
    """Hex of EF06 records (tag, length, value …) with the person's values masked."""
    out = []
    pos = 0
    while pos + 2 <= len(data):
        tag, length = data[pos], data[pos + 1]
        value = data[pos + 2:pos + 2 + length]
        out.append(data[pos:pos + 2].hex().upper())
        out.append(MASK_BYTE * len(value) if tag in HOLDER_TAGS else value.hex().upper())
        pos += 2 + length
    out.append(data[pos:].hex().upper())
    return "".join(out)


def mask_known(text: str, secrets: frozenset[bytes] | set[bytes]) -> str:
    """``text`` (hex of an exchange) with each byte-aligned occurrence of a secret masked."""
    for secret in secrets:
        if len(secret) < 2:
            continue
        needle = secret.hex().upper()
        start = text.find(needle)
        while start != -1:
            if start % 2 == 0:
                text = text[:start] + MASK_BYTE * len(secret) + text[start + len(needle):]
            start = text.find(needle, start + 1)
    return text
