"""DF01–DF07 reads and writes (``sbcard.ops.records``, national iReadCard/iWriteCard) on the
in-process simulated cards: APDUs per operation and time per call.

    python bench/bench_records.py [--n 200] [--json]

The PIN read is SELECT DF, VERIFY query, VERIFY, READ RECORD; the RK read adds the card
context, the IRK precheck in the SSSE, GET CHALLENGE and EXTERNAL AUTHENTICATE. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from sbcard.keys.builtin import builtin_key_file
    from sbcard.national.config import DriverConfig
    from sbcard.national.driver import SSCardDriver
    from sbcard.national.lines import split_fields
    from sbcard.ops.pin import Pin
    from sbcard.ops.records import DfSession, ItemRef, Method, ReadAuth, read_file, write_file
    from tests.fakes import recorded_sim_card

    keys = builtin_key_file()
    item = (ItemRef(0x37),)
    rows = {}
    for persona in ("demo", "v3"):
        cases = {
            "read by PIN": lambda s: read_file(s, "DF01EF0A", item,
                                               ReadAuth(Method.PIN, pin=Pin("123456"))),
            "read by RK1DF01": lambda s: read_file(s, "DF01EF0A", item,
                                                   ReadAuth(Method.KEY, keys=keys)),
            "write by UK5DF01": lambda s: write_file(s, "DF01EF0A", item, ("CHN",), keys),
            "write with MAC": lambda s: write_file(s, "DF01EF0A", item, ("CHN",), keys,
                                                   mac=True),
        }
        for name, op in cases.items():
            _, channel, sent = recorded_sim_card(persona)
            op(DfSession(channel))
            apdus = len(sent)
            start = time.perf_counter()
            for _ in range(args.n):
                op(DfSession(channel))
            rows[f"{persona} {name}"] = {
                "apdus": apdus, "ms": round((time.perf_counter() - start) / args.n * 1000, 3)}
        d = SSCardDriver(DriverConfig(sim=persona, key_source="keys", keys="test"))
        fields = split_fields(d.iReadCardBas(1)[1])
        info = f"{fields[3]}|{fields[2]}|"
        for name, func, call_args in (
                ("iReadCard DF01EF0A by RK", d.iReadCard, (1, 2, info, "DF01EF0A|37|$")),
                ("iWriteCard DF01EF0A", d.iWriteCard,
                 (1, info, "DF01EF0A|37|$", "DF01EF0A|CHN|$"))):
            start = time.perf_counter()
            for _ in range(args.n):
                assert func(*call_args)[0] == 0
            rows[f"{persona} {name}"] = {
                "apdus": None, "ms": round((time.perf_counter() - start) / args.n * 1000, 3)}
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for name, row in rows.items():
        apdus = "" if row["apdus"] is None else f"{row['apdus']:3d} APDUs  "
        print(f"{name:34s} {apdus}{row['ms']:.3f} ms")


if __name__ == "__main__":
    main()
