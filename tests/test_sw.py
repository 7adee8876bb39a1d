import pytest

from sbcard.apdu.sw import (
    SW,
    SW_TABLE,
    AuthFailedError,
    BlockedError,
    CardError,
    NotFoundError,
    SecurityStatusError,
    SwKind,
    describe_sw,
    lookup_sw,
    tries_left,
)
from sbcard.errors import ExitCode


def test_specific_rows_win_over_general_ones():
    assert lookup_sw(0x63C2).kind is SwKind.AUTH_FAILED
    assert lookup_sw(0x6310).kind is SwKind.WARNING
    assert lookup_sw(0x6281).en.startswith("part of returned data")
    assert lookup_sw(0x6299).kind is SwKind.WARNING


def test_describe_adds_counts():
    assert describe_sw(0x63C2).endswith("(2 tries left / 剩余2次)")
    assert "(18 bytes)" in describe_sw(0x6112)
    assert "(256 bytes)" in describe_sw(0x6100)
    assert "Le should be 0B" in describe_sw(0x6C0B)
    assert describe_sw(0x9303).startswith("9303 应用已被永久锁定")
    assert "unknown status word" in describe_sw(0x1234)


def test_tries_left():
    assert tries_left(0x63C1) == 1
    assert tries_left(0x6983) == 0
    assert tries_left(0x9000) is None


@pytest.mark.parametrize(
    ("sw", "cls", "code"),
    [
        (0x63C1, AuthFailedError, ExitCode.PIN_WRONG),
        (0x6983, BlockedError, ExitCode.BLOCKED),
        (0x9303, BlockedError, ExitCode.BLOCKED),
        (0x6982, SecurityStatusError, ExitCode.CARD_ERROR),
        (0x6A83, NotFoundError, ExitCode.CARD_ERROR),
        (0x6700, CardError, ExitCode.CARD_ERROR),
    ],
)
def test_card_error_for_sw(sw, cls, code):
    err = CardError.for_sw(sw, "VERIFY")
    assert type(err) is cls
    assert err.exit_code == code
    assert str(err).startswith(f"VERIFY: card answered {sw:04X}")


def test_every_named_status_word_has_its_own_table_row():
    for sw in SW:
        entry = lookup_sw(sw)
        assert entry in SW_TABLE, f"{sw.name} {sw:04X} has no row in SW_TABLE"
    assert f"{SW.FILE_NOT_FOUND:04X}" == "6A82"
    assert lookup_sw(SW.VERIFY_FAILED | 2).kind is SwKind.AUTH_FAILED


def test_status_words_are_named_outside_the_sw_table() -> None:
    """sim, ops, keys, compose and national name status words (``SW.FILE_NOT_FOUND``) rather
    than write ``0x6A82``: a raw literal equal to an ``SW`` member is a missed name. Negative
    national return codes (``-0x6A83``) are not status words. national/codes.py is left out:
    its table transcribes the public driver's code ↔ status word pairs as data, and its PIN-pad
    answers (PC/SC part 10, 64xx) are not card status words; so is national/pinpad.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "sbcard"
    named = {int(member) for member in SW}
    literal = re.compile(r"(?<![-\w])0x([0-9A-Fa-f]{4})\b")
    found = []
    for part in ("sim", "ops", "keys", "national", "compose.py"):
        paths = [root / part] if part.endswith(".py") else sorted((root / part).rglob("*.py"))
        for path in paths:
            if path.relative_to(root).as_posix() in ("national/codes.py",
                                                     "national/pinpad.py"):
                continue
            for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
                code = line.split("#", 1)[0]
                found += [f"{path.relative_to(root)}:{n}: {m.group(0)}"
                          for m in literal.finditer(code) if int(m.group(1), 16) in named]
    assert found == []
