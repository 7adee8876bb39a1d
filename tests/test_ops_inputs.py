"""``sbcard.ops.inputs``: keys and data from hex, files, stdin, ``@FILE`` and ``env:VAR``."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from sbcard.errors import BadInputError
from sbcard.ops.inputs import (
    InputChoiceError,
    bytes_or_file,
    looks_like_hex_text,
    one_byte,
    one_input,
    read_file,
    secret_hex,
    write_file,
)

KEY = "00112233445566778899AABBCCDDEEFF"


def test_secret_hex_from_each_source(tmp_path: Path) -> None:
    expected = bytes.fromhex(KEY)
    assert secret_hex(KEY, "--key") == expected
    assert secret_hex("-", "--key", stdin=io.StringIO(KEY + "\nignored\n")) == expected
    keyfile = tmp_path / "k.hex"
    keyfile.write_text(f"  {KEY}\n")
    assert secret_hex(f"@{keyfile}", "--key") == expected
    assert secret_hex("env:SB_K", "--key", environ={"SB_K": f" {KEY} "}) == expected


def test_secret_hex_failures_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"--key: environment variable SB_K is not set"):
        secret_hex("env:SB_K", "--key", environ={})
    with pytest.raises(BadInputError, match=r"--key: nothing in stdin"):
        secret_hex("-", "--key", stdin=io.StringIO("\n"))
    with pytest.raises(BadInputError, match=r"--key: no such file"):
        secret_hex(f"@{tmp_path / 'none'}", "--key")
    with pytest.raises(BadInputError, match=r"\$SB_K"):
        secret_hex("env:SB_K", "--key", environ={"SB_K": "zz"})


def test_read_file_stdin_and_errors(tmp_path: Path) -> None:
    assert read_file("-", "--in", stdin=io.BytesIO(b"\x00\x01")) == b"\x00\x01"
    with pytest.raises(BadInputError, match="is a directory"):
        read_file(str(tmp_path), "--in")
    with pytest.raises(BadInputError, match="no such file"):
        read_file(str(tmp_path / "nope"), "--in")


def test_bytes_or_file_tells_hex_text_from_binary(tmp_path: Path) -> None:
    text, binary = tmp_path / "sig.hex", tmp_path / "sig.bin"
    text.write_text("30 45\n02 21\n")
    binary.write_bytes(b"\x30\x45\xff")
    assert bytes_or_file(str(text), "--sig") == b"\x30\x45\x02\x21"
    assert bytes_or_file(str(binary), "--sig") == b"\x30\x45\xff"
    assert bytes_or_file("3045", "--sig") == b"\x30\x45"
    with pytest.raises(BadInputError, match="not hex either"):
        bytes_or_file(str(tmp_path / "missing.pem"), "--sig")
    assert looks_like_hex_text(b"0A:0B") and not looks_like_hex_text(b"  \n")


def test_write_file_private_resets_mode(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_file(str(path), b"new", private=True)
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_one_byte() -> None:
    assert one_byte("0A", "--key-id") == 10
    with pytest.raises(BadInputError, match="must be one byte"):
        one_byte("0A0B", "--key-id")


def test_one_input_picks_exactly_one_source(tmp_path: Path) -> None:
    data = tmp_path / "m.bin"
    data.write_bytes(b"\xff\x00")
    assert one_input(("61 62", "63"), None) == b"abc"
    assert one_input((), str(data)) == b"\xff\x00"
    assert one_input((), None, "абв", text_offered=True) == "абв".encode()
    assert one_input(("-",), None, stdin=io.BytesIO(b"raw")) == b"raw"
    assert one_input((), "-", stdin=io.BytesIO(b"")) == b""
    with pytest.raises(InputChoiceError, match=r"^no message: give it as HEX or --in FILE$"):
        one_input((), None, what="message")
    with pytest.raises(InputChoiceError,
                       match=r"given twice \(HEX and --text\): use one of HEX, --in FILE or"):
        one_input(("00",), None, "x", text_offered=True)
