"""No credential or personal number where it should not be (issue 10 §4), and the secrets
scan: the read/verify/activate/personalise/script flows run with distinctive PINs, keys and a
PAN, and every file written, stdout, stderr and the argv of every child process is searched.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from sbcard.apdu.redact import HOLDER_TAGS, mask_response
from tests.cli_runner import run_cli
from tests.holders_factory import holder_rows, write_csv

KEY = "A1B2C3D4E5F60718293A4B5C6D7E8F90"          # distinctive 16-byte key
PIN = "582914"


def script(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.apdu"
    p.write_text(text, encoding="utf-8")
    return p


def test_secret_variable_inside_a_raw_apdu_is_masked(capsys, tmp_path):
    s = script(tmp_path, "00A4040000\n80DC0101 10 ${key}\n")
    code, out, err = run_cli(capsys, "script", "run", str(s), "--var", f"key={KEY}",
                             "--dry-run")
    assert code == 0, err
    assert KEY not in out + err and "80DC010110" + "*" * 32 in out
    code, out, err = run_cli(capsys, "--sim", "--trace", "script", "run", str(s),
                             "--var", f"key={KEY}")
    assert KEY not in (out + err).upper()


def test_secret_passed_through_set_and_echo_is_masked(capsys, tmp_path):
    s = script(tmp_path, "set x ${pin}\nset y = abc ${x}\necho ${y} and ${x}\n")
    for extra in (("--dry-run",), ()):
        code, out, err = run_cli(capsys, "--sim", "script", "run", str(s), "--var",
                                 f"pin={PIN}", *extra)
        assert code == 0, err
        assert PIN not in out + err


def test_var_file_keeps_the_pin_out_of_argv(capsys, tmp_path):
    s = script(tmp_path, "option t0 on\nselect-ssse\nverify-pin ${pin}\n")
    code, out, err = run_cli(capsys, "--sim", "script", "run", str(s), "--var-file", "-",
                             stdin="pin=123456\n")
    assert code == 0, err
    assert "123456" not in out + err


def test_trace_and_dump_mask_the_holder_unless_no_redact(capsys, tmp_path):
    ssn = "519900199001010015"
    dump = tmp_path / "r.dump"
    code, out, err = run_cli(capsys, "--sim", "--trace", "--dump", str(dump), "read", "--json")
    assert code == 0 and ssn in out                  # the holder sees their own data …
    assert ssn.encode().hex().upper() not in err.upper()   # … the trace does not
    assert ssn.encode().hex().upper() not in dump.read_text().upper()
    code, out, err = run_cli(capsys, "--sim", "--trace", "--no-redact", "read")
    assert ssn.encode().hex().upper() in err.upper()


def test_holder_masking_also_covers_t0_chunks(capsys, tmp_path):
    code, out, err = run_cli(capsys, "--sim", "t0quirks", "--trace", "read", "--json")
    assert code == 0
    import json

    ssn = json.loads(out)["ssn"]
    assert ssn and ssn.encode().hex().upper() not in err.upper()


def test_holder_tags_are_the_card_models():
    from sbcard.card.elements import BY_KEY

    assert {BY_KEY[k].tag for k in ("ssn", "name", "name_ext", "birth_date")} == HOLDER_TAGS


def test_pan_split_across_t0_chunks_is_masked():
    pan = "6217009999000000016F"
    record = bytes.fromhex("7012" + "5A0A" + pan + "5F2403301231")
    first, second = record[:8], record[8:]
    shown1 = mask_response(first + b"\x61\x0C")
    shown2 = mask_response(second + b"\x90\x00", before=first)
    both = shown1 + shown2
    assert "62170099" not in both and "0000016" not in both
    track1 = bytes.fromhex("700E" + "560C") + b"B6217009999^"
    assert b"6217009999".hex().upper() not in mask_response(track1 + b"\x90\x00")
    t2 = bytes.fromhex("700D" + "9F6B0A" + "6217009999000000016D")
    assert "6217009999000000016" not in mask_response(t2 + b"\x90\x00")


def test_crypto_key_from_stdin_file_env_and_dash_means_stdin(capsys, tmp_path, monkeypatch):
    data = "00112233445566778899AABBCCDDEEFF"
    code, want, _ = run_cli(capsys, "crypto", "sm4", "enc", "--key", KEY, data)
    assert code == 0
    (tmp_path / "k").write_text(KEY + "\n")
    monkeypatch.setenv("SBCARD_TEST_KEY", KEY)
    for key, stdin in (("-", KEY + "\n"), (f"@{tmp_path / 'k'}", None),
                       ("env:SBCARD_TEST_KEY", None)):
        code, out, err = run_cli(capsys, "crypto", "sm4", "enc", "--key", key, data,
                                 stdin=stdin)
        assert code == 0 and out == want, err
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"abc")))
    code, out, err = run_cli(capsys, "crypto", "sm3", "-")
    _code2, out2, _ = run_cli(capsys, "crypto", "sm3", "--text", "abc")
    assert code == 0 and out == out2                  # `-` is stdin, not the empty string


def test_sm2_sign_warns_on_a_world_readable_key(capsys, tmp_path):
    key = tmp_path / "k.pem"
    code, _, err = run_cli(capsys, "crypto", "sm2", "keygen", "--out-key", str(key),
                           "--out-pub", str(tmp_path / "p.pem"))
    assert code == 0, err
    key.chmod(0o644)
    code, _, err = run_cli(capsys, "crypto", "sm2", "sign", "--key", str(key), "--text", "m")
    assert code == 0 and "readable by other users" in err
    key.chmod(0o600)
    code, _, err = run_cli(capsys, "crypto", "sm2", "sign", "--key", str(key), "--text", "m")
    assert "readable by other users" not in err


# -- the secrets scan -----------------------------------------------------------------------

SCAN_PIN = "864209"                 # initial PIN of the batch (distinctive)
SCAN_NEW_PIN = "731950"
PAN_DIGITS = "6217009999000000016"  # the demo persona's bank card number


def _every_file(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_secrets_scan(capsys, tmp_path, monkeypatch):
    """Distinctive PINs, a key and a PAN through read, verify, activate, personalise and
    script flows (with --trace and --dump): none in any file written, stdout or stderr, nor
    in the argv of a child process (the activation hook and the robot are children)."""
    monkeypatch.chdir(tmp_path)
    seen_argv: list[list[str]] = []
    real_run = subprocess.run
    real_popen = subprocess.Popen

    def spy_run(args, *a, **kw):
        seen_argv.append([str(x) for x in (args if isinstance(args, list) else [args])])
        return real_run(args, *a, **kw)

    class SpyPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args, *a, **kw):
            seen_argv.append([str(x) for x in (args if isinstance(args, list) else [args])])
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy_run)
    monkeypatch.setattr(subprocess, "Popen", SpyPopen)
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\ncat > /dev/null\n")
    hook.chmod(0o700)
    texts: list[str] = []

    def cli(*args: str, stdin: str | None = None, want: int = 0) -> None:
        code, out, err = run_cli(capsys, *args, stdin=stdin)
        assert code == want, (args, err)
        texts.extend((out, err))

    cli("--sim", "--trace", "--dump", "read.dump", "read", "--bank")
    cli("--sim", "--trace", "--dump", "verify.dump", "verify", "pin", "--pin-stdin",
        stdin=f"{SCAN_PIN}\n", want=6)                    # a wrong PIN, typed
    cli("--sim", "--trace", "activate", "--id", "519900199001010015", "--operator", "op",
        "--pin-stdin", "--audit-db", "audit.sqlite", "--hook", str(hook),
        stdin=f"123456\n{SCAN_NEW_PIN}\n{SCAN_NEW_PIN}\n")
    csv = write_csv(tmp_path / "holders.csv", holder_rows(3, pin=None))
    cli("--sim", "blank", "--keys", "test", "personalise", str(csv), "--initial-pin-stdin",
        "--no-progress", "--report", "report.csv", stdin=f"{SCAN_PIN}\n")
    s = script(tmp_path, "option t0 on\nselect-ssse\nset p ${pin}\necho ${p}\n"
                         "80DC0101 10 ${key}\n")
    cli("--sim", "--trace", "script", "run", str(s), "--var-file", "-",
        stdin=f"pin={SCAN_PIN}\nkey={KEY}\n")
    files = _every_file(tmp_path)
    assert any(p.name == "holders.journal.sqlite" for p in files)
    secrets = [SCAN_PIN, SCAN_NEW_PIN, KEY, PAN_DIGITS]
    hexed = [s.encode().hex().upper() for s in (SCAN_PIN, SCAN_NEW_PIN)]
    for path, data in files.items():
        if path.name in ("holders.csv", "s.apdu", "hook.sh"):
            continue                                      # what the test itself wrote
        upper = data.upper()
        for secret in [*secrets, *hexed]:
            assert secret.encode() not in upper, (path, secret)
    for text in texts:
        for secret in [*secrets, *hexed]:
            assert secret not in text.upper(), secret
    assert seen_argv, "the hook ran as a child process"
    for argv in seen_argv:
        for secret in secrets:
            assert not any(secret in a for a in argv), argv
    for name in ("audit.sqlite", "holders.journal.sqlite", "report.csv", "read.dump"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name


@pytest.mark.parametrize("url", ["postgresql://u:Tr0ub4dor@127.0.0.1:1/x",
                                 "http://u:Tr0ub4dor@[::1]:1/x"])
def test_redact_url(url):
    from sbcard.ops.private import redact_url

    assert "Tr0ub4dor" not in redact_url(url) and "u:***@" in redact_url(url)
