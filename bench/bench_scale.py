"""Cost per card as a batch grows (issue 10 §8): cards/min at 1k, 10k and 50k holders on
SQLite and 10k on PostgreSQL, and the start-up time of ``--resume`` at each size.

    python bench/bench_scale.py [--sizes 1000 10000 50000] [--pg-sizes 10000] [--cards 1000]
                                [--full] [--json]

For each size N the batch is opened, N - CARDS holders are marked done straight in the journal
(as if the batch had run that far), and the last CARDS cards are personalised in-process
(simulated blanks): that is the per-card cost with a journal of N holders, which is what grew
before (a claim scanned every done row, two GROUP BYs per card). ``--full`` personalises all
N instead. Resume start-up = reading and validating the CSV + opening the batch again with
--resume + its counts (what happens before the first card). PostgreSQL needs SBCARD_PG_URL.
Target: per-card cost at 50k within 1.2x of 1k; resume start-up under 1 s at 50k.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sbcard.card.identity import card_no_check_char, id_check_char  # noqa: E402
from sbcard.card.profiles import load_profile  # noqa: E402
from sbcard.compose import SimSlot  # noqa: E402
from sbcard.keys.builtin import builtin_key_file  # noqa: E402
from sbcard.ops.holders import load_holders  # noqa: E402
from sbcard.ops.journal import Journal  # noqa: E402
from sbcard.ops.personalise import BatchPlan, run_batch  # noqa: E402
from sbcard.ops.script import parse_script  # noqa: E402
from tests.holders_factory import write_csv  # noqa: E402

RECIPES = ROOT / "apdu_scripts"


def holders(n: int) -> list[dict[str, str]]:
    """n synthetic holders with distinct, valid ID numbers (one birth date per 1000)."""
    rows = []
    start = dt.date(1950, 1, 1)
    for i in range(n):
        birth = start + dt.timedelta(days=i // 1000)
        body = f"519900{birth:%Y%m%d}{i % 1000:03d}"
        no = f"A{i + 100:07d}"
        rows.append({"ssn": body + id_check_char(body), "name": f"测试{i}号",
                     "sex": str(1 + i % 2), "ethnicity": "01", "birthplace": "519900",
                     "birth_date": birth.isoformat(), "card_no": no + card_no_check_char(no),
                     "card_type": "3", "issue_date": "2026-11-01", "expiry_date": "2036-11-01",
                     "pin": "123456"})
    return rows


def prefill(journal: str, batch_id: int, done: int) -> None:
    """Mark the first ``done`` holders of the batch done, as a batch that ran that far."""
    with Journal(journal) as j, j.tx() as db:
        db.execute("UPDATE holder SET status = 'done', card_id = 'PREFILL' || "
                   "CAST(id AS TEXT) WHERE id IN (SELECT holder_id FROM entry WHERE "
                   "batch_id = ? AND row_no <= ?)", (batch_id, done))
        db.execute("UPDATE entry SET open = 0 WHERE batch_id = ? AND row_no <= ?",
                   (batch_id, done))


def run_size(n: int, cards: int, journal: str, folder: Path, full: bool) -> dict:
    csv = write_csv(folder / f"holders-{n}.csv", holders(n))
    t0 = time.perf_counter()
    hs = load_holders(csv)
    with Journal(journal) as j:
        batch = j.open_batch(csv, hs, "bench", resume=False).batch_id
    open_s = time.perf_counter() - t0
    todo = n if full else min(cards, n)
    if todo < n:
        prefill(journal, batch, n - todo)
    recipes = {"2.0": parse_script(RECIPES / "personalise-2.0.apdu"),
               "3.0": parse_script(RECIPES / "personalise-3.0.apdu")}
    plan = BatchPlan(batch, {h.row: h for h in hs}, recipes, builtin_key_file(),
                     load_profile("mohrss-2.0"))
    t0 = time.perf_counter()
    run_batch([SimSlot("blank", todo, first_serial=1)], journal, plan)
    run_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Journal(journal) as j:          # as `personalise --resume` does
        hs = load_holders(csv, validated=j.known_holders(),
                          unchanged=j.loaded_before(csv))
        batch = j.open_batch(csv, hs, "bench", resume=True).batch_id
        counts = j.counts(batch)
    resume_s = time.perf_counter() - t0
    assert counts.done == n, counts
    return {"holders": n, "cards_timed": todo, "cards_per_min": round(todo / run_s * 60),
            "ms_per_card": round(run_s / todo * 1000, 3), "first_open_s": round(open_s, 3),
            "resume_startup_s": round(resume_s, 3)}


def pg_schema(base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000])
    ap.add_argument("--pg-sizes", type=int, nargs="*", default=[10000])
    ap.add_argument("--cards", type=int, default=1000)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for n in args.sizes:
            r = run_size(n, args.cards, str(folder / f"j{n}.sqlite"), folder, args.full)
            results.append({"backend": "sqlite", **r})
            if not args.json:
                print(_line(results[-1]), flush=True)
        base = os.environ.get("SBCARD_PG_URL")
        for n in args.pg_sizes if base else []:
            url = pg_schema(base, f"bench_scale_{n}")
            r = run_size(n, args.cards, url, folder, args.full)
            results.append({"backend": "postgresql", **r})
            if not args.json:
                print(_line(results[-1]), flush=True)
        if args.pg_sizes and not base and not args.json:
            print("postgresql: skipped (set SBCARD_PG_URL, e.g. $(./.ci/postgres))")
    sqlite = [r for r in results if r["backend"] == "sqlite"]
    if len(sqlite) >= 2 and not args.json:
        ratio = sqlite[-1]["ms_per_card"] / sqlite[0]["ms_per_card"]
        print(f"per-card cost {sqlite[-1]['holders']} vs {sqlite[0]['holders']} holders: "
              f"{ratio:.2f}x (target <= 1.2x)")
    if args.json:
        print(json.dumps(results, indent=2))


def _line(r: dict) -> str:
    return (f"{r['backend']:<10} {r['holders']:>6} holders: {r['cards_per_min']:>7} cards/min "
            f"({r['ms_per_card']} ms/card over the last {r['cards_timed']}), first open "
            f"{r['first_open_s']} s, resume start-up {r['resume_startup_s']} s")


if __name__ == "__main__":
    main()
