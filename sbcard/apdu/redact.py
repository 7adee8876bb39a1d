"""What must never appear in clear in a trace, a log or a dump, and how it is masked.

The rules are data: a command is matched by CLA (with the secure-messaging and channel bits
ignored) and INS, and its data field is masked whole, because PIN blocks, PIN-change blocks
and key loads have no public part worth showing. Responses are scanned for the BER-TLV tags
that carry a bank card number (PAN), which is shown as first 6 and last 4 digits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu import tlv

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

#: BER-TLV tags holding a bank card number: 5A PAN, 57 track 2 equivalent.
PAN_TAGS: frozenset[int] = frozenset({0x5A, 0x57, 0x9F6B})

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


def mask_response(response: bytes) -> str:
    """Hex of a response with PAN values masked (``*`` for each hidden digit)."""
    data, sw = response[:-2], response[-2:]
    spans = list(_pan_spans(data))
    if not spans:
        return response.hex().upper()
    text = data.hex().upper()
    out = []
    last = 0
    for start, end in spans:
        out.append(text[last:start * 2])
        nibbles = text[start * 2:end * 2]
        digits = nibbles.split("D")[0].rstrip("F")
        out.append(mask_pan_digits(digits) + nibbles[len(digits):])
        last = end * 2
    out.append(text[last:])
    return "".join(out) + sw.hex().upper()


def _pan_spans(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of PAN values inside a BER-TLV response (record templates nest)."""
    if not data or data[0] not in PAN_TEMPLATES:
        return []
    try:
        objects = tlv.parse(data)
    except tlv.TlvError:
        return []
    spans: list[tuple[int, int]] = []
    stack = list(objects)
    while stack:
        obj = stack.pop()
        if obj.tag in PAN_TAGS:
            spans.append((obj.offset, obj.offset + len(obj.value)))
        stack.extend(obj.children)
    return sorted(spans)
