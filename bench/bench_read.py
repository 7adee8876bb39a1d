"""``sbcard read``: APDUs per full read and wall time end to end; CLI start-up.

    python bench/bench_read.py [--runs 15] [--json]

Targets (issue 3): ≤ 6 APDUs on cards with multi-record reads, ≤ 250 ms for `sbcard read`
through pcscd including process start, `sbcard --help` ≤ 150 ms. Prints figures; asserts
nothing. The pcscd figures need pcscd with vsmartcard-vpcd (``./.ci/pcscd``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._served import READER, pcscd_ready, served  # noqa: E402
from sbcard.apdu.trace import TraceRecord  # noqa: E402
from sbcard.compose import SessionOptions, open_session  # noqa: E402
from sbcard.ops.read import read_card  # noqa: E402

SBCARD = [sys.executable, "-m", "sbcard"]


def apdus_per_read(persona: str) -> int:
    records: list[TraceRecord] = []
    with open_session(SessionOptions(sim=persona, on_record=records.append)) as ch:
        read_card(ch)
    return len(records)


def wall_ms(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def read_through_pcscd(runs: int) -> float | None:
    if not pcscd_ready():
        return None
    from sbcard.sim.persona import load_persona

    with served(load_persona("demo").build_card()):
        return wall_ms([*SBCARD, "-r", READER, "read"], runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {
        "apdus_per_read": {p: apdus_per_read(p) for p in ("demo", "v1", "t0quirks")},
        "read_pcscd_wall_ms": read_through_pcscd(args.runs),
        "read_in_process_sim_wall_ms": wall_ms([*SBCARD, "--sim", "read"], args.runs),
        "help_wall_ms": wall_ms([*SBCARD, "--help"], args.runs),
        "python_startup_ms": wall_ms([sys.executable, "-c", "pass"], args.runs),
        "targets": {"apdus": 6, "read_ms": 250, "help_ms": 150},
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    a = results["apdus_per_read"]
    rp = results["read_pcscd_wall_ms"]
    print("sbcard read")
    print(f"  APDUs per full read (EF05+EF06): demo {a['demo']} (multi-record), v1 {a['v1']}, "
          f"t0quirks {a['t0quirks']} (61xx SELECT, no multi-record)   target ≤ 6")
    print(f"  `sbcard read` through pcscd, median wall time incl. start: "
          f"{'unavailable' if rp is None else f'{rp:.0f} ms'}   target ≤ 250 ms")
    sim_ms = results["read_in_process_sim_wall_ms"]
    print(f"  `sbcard --sim read`, median wall time: {sim_ms:.0f} ms")
    print(f"  `sbcard --help`, median wall time: {results['help_wall_ms']:.0f} ms   target ≤ 150 ms"
          f" (bare python start: {results['python_startup_ms']:.0f} ms)")


if __name__ == "__main__":
    main()
