"""Regional SSSE files and EF07 through the real pcscd (issue 11 item 8): sbcard as a separate
process at the counter, the simulated card served into vpcd.

EF0D's APDUs are the public Jiangsu kiosk code's (JSCardKiosks CardWriteRead, cited in
sbcard/card/profiles/region-jiangsu.toml); EF07 is 人社信息函〔2012〕37号 table 3.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.hil.conftest import READER

pytestmark = pytest.mark.pcscd

JIANGSU = "mohrss-2.0+jiangsu"


def sbcard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbcard", "-r", READER, *args],
                          capture_output=True, text=True, timeout=60)


def test_jiangsu_ef0d_written_with_the_psam_and_read_back_through_pcscd(serve) -> None:
    served = serve("jiangsu")
    r = sbcard("--trace", "record", "read", "SSSEEF0D", "--profile", JIANGSU, "--json")
    assert r.returncode == 0, r.stderr
    assert {i["item"]: i["text"] for i in json.loads(r.stdout)["items"]} == {
        "EA": "JS9900000012", "EB": "320899", "EC": "1", "ED": "0"}
    trace = r.stderr.replace(" ", "").upper()
    assert "00B201040E" in trace and "00B2020405" in trace       # by number, Le exact
    r = sbcard("--psam", "sim:jiangsu", "--trace", "record", "write", "SSSEEF0D",
               "EA=JS9900000029", "EB=320801", "--profile", JIANGSU)
    assert r.returncode == 0, r.stderr
    trace = r.stderr.replace(" ", "").upper()
    for command in ("BFDE481318", "0082000D10", "00DC020405EB03320801"):
        assert command in trace, command
    ef0d = next(iter(served.card.apps.values())).efs[0xEF0D]
    assert bytes(ef0d.records[0]) == b"\xEA\x0C" + b"JS9900000029"
    r = sbcard("record", "read", "SSSEEF0D", "EA", "--profile", JIANGSU, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["items"][0]["text"] == "JS9900000029"


def test_ef07_fingerprint_through_pcscd(serve, tmp_path) -> None:
    serve("v3")
    out = tmp_path / "finger.bin"
    r = sbcard("--keys", "test", "record", "read", "SSSEEF07", "--out", str(out))
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert len(data) == 0x300 and data.startswith(b"SBCARD SYNTHETIC FINGERPRINT")
