"""Personalisation throughput: cards per minute, 2.0 and 3.0, in-process and through pcscd,
with the share of time spent in crypto (key source) and in card I/O (transport).

    python bench/bench_personalise.py [--cards 300] [--pcscd-cards 10] [--json]

Target (issue 6): ≥ 600 cards/minute for 2.0 cards in-process. Through pcscd the figure is
per card in the reader (insertion/removal detection by pcscd's polling is reported apart).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._served import READER, pcscd_ready, served  # noqa: E402
from sbcard.apdu.channel import ApduChannel  # noqa: E402
from sbcard.apdu.t0 import T0Layer  # noqa: E402
from sbcard.card.profiles import load_profile  # noqa: E402
from sbcard.compose import SimSlot  # noqa: E402
from sbcard.keys.base import KeySource  # noqa: E402
from sbcard.keys.builtin import builtin_key_file  # noqa: E402
from sbcard.ops.holders import load_holders  # noqa: E402
from sbcard.ops.journal import Journal  # noqa: E402
from sbcard.ops.personalise import BatchPlan, run_batch  # noqa: E402
from sbcard.ops.script import parse_script  # noqa: E402
from sbcard.transport.base import TransportLayer  # noqa: E402
from sbcard.transport.simulated import SimulatedTransport  # noqa: E402
from tests.holders_factory import holder_rows, write_csv  # noqa: E402


class TimedKeys(KeySource):
    """Wraps a key source and adds up the time spent computing cryptograms."""

    def __init__(self, inner: KeySource) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0

    def _timed(self, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def auth_data(self, *a):
        return self._timed(self.inner.auth_data, *a)

    def internal_auth_expected(self, *a):
        return self._timed(self.inner.internal_auth_expected, *a)

    def mac(self, *a):
        return self._timed(self.inner.mac, *a)

    def encrypt(self, *a):
        return self._timed(self.inner.encrypt, *a)

    def has_key(self, key_id):
        return self.inner.has_key(key_id)


class _IoTimer(TransportLayer):
    """Adds up the time the card takes; nothing else (a TraceLayer would also mask and
    format every exchange, work a batch without --trace never does)."""

    def __init__(self, inner, slot: TimedSimSlot) -> None:
        super().__init__(inner)
        self.slot = slot

    def transmit(self, command: bytes) -> bytes:
        start = time.perf_counter()
        try:
            return self.inner.transmit(command)
        finally:
            self.slot.io_seconds += time.perf_counter() - start


class TimedSimSlot(SimSlot):
    """SimSlot whose transport stack times card I/O (the simulator's own work)."""

    io_seconds = 0.0

    def next_card(self, stop):
        ch = super().next_card(stop)
        if ch is None:
            return None
        card = self.cards[-1]
        t = _IoTimer(SimulatedTransport(card), self)
        t.connect()
        return ApduChannel(T0Layer(t))


def plan_for(tmp: Path, n: int, keys: KeySource) -> tuple[BatchPlan, Path]:
    csv = write_csv(tmp / "h.csv", holder_rows(n))
    holders = load_holders(csv)
    journal = tmp / "j.sqlite"
    j = Journal(journal)
    batch = j.open_batch(csv, holders, "bench", resume=False).batch_id
    j.close()
    recipes = {"2.0": parse_script(ROOT / "apdu_scripts" / "personalise-2.0.apdu"),
               "3.0": parse_script(ROOT / "apdu_scripts" / "personalise-3.0.apdu")}
    from sbcard.ops.pki_issue import CertificateAuthority

    return BatchPlan(batch, {h.row: h for h in holders}, recipes, keys,
                     load_profile("mohrss-2.0"), ca=CertificateAuthority.load("test")), journal


def in_process(persona: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        keys = TimedKeys(builtin_key_file())
        plan, journal = plan_for(Path(d), n, keys)
        slot = TimedSimSlot(persona, n)
        start = time.perf_counter()
        run_batch([slot], journal, plan)
        wall = time.perf_counter() - start
    return {"cards": n, "seconds": wall, "cards_per_minute": n / wall * 60,
            "crypto_share": keys.seconds / wall, "card_io_share": slot.io_seconds / wall}


def through_pcscd(persona: str, n: int) -> dict | None:
    if not pcscd_ready():
        return None
    from sbcard.ops.personalise import PcscSlot, pcsc_session
    from tests.test_personalise import blank_card, card_id_hex

    with tempfile.TemporaryDirectory() as d:
        keys = TimedKeys(builtin_key_file())
        plan, journal = plan_for(Path(d), n, keys)
        busy: list[float] = []
        plan.on_outcome = lambda o: busy.append(o.seconds)
        done = threading.Event()

        def robot() -> None:
            for i in range(n):
                card = blank_card(0x7000 + i, persona)
                cid = card_id_hex(card)
                with served(card):               # out again once the journal says done
                    while not done.is_set():
                        j = Journal(journal)
                        status = j.db.execute("SELECT status FROM holder WHERE card_id = ?",
                                              (cid,)).fetchone()
                        j.close()
                        if status and status[0] == "done":
                            break
                        time.sleep(0.005)

        rt = threading.Thread(target=robot, daemon=True)
        start = time.perf_counter()
        rt.start()
        run_batch([PcscSlot(READER, lambda name: pcsc_session(name), poll=0.01)], journal, plan)
        wall = time.perf_counter() - start
        done.set()
        rt.join(10)
    per_card = sum(busy) / len(busy)
    return {"cards": n, "seconds": wall, "cards_per_minute_wall": n / wall * 60,
            "cards_per_minute_in_reader": 60 / per_card,
            "crypto_share_in_reader": keys.seconds / sum(busy)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=300)
    ap.add_argument("--pcscd-cards", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {
        "in_process_2.0": in_process("blank", args.cards),
        "in_process_3.0": in_process("blank3", args.cards),
        "pcscd_2.0": through_pcscd("blank", args.pcscd_cards),
        "pcscd_3.0": through_pcscd("blank3", args.pcscd_cards),
        "target_cards_per_minute_2.0_in_process": 600,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("Personalisation throughput")
    for key in ("in_process_2.0", "in_process_3.0"):
        r = results[key]
        print(f"  {key:<16} {r['cards_per_minute']:8.0f} cards/min  ({r['cards']} cards, "
              f"crypto {r['crypto_share']:.0%}, card I/O {r['card_io_share']:.0%} of wall time)")
    for key in ("pcscd_2.0", "pcscd_3.0"):
        r = results[key]
        if r is None:
            print(f"  {key:<16} unavailable (no pcscd/vpcd)")
            continue
        print(f"  {key:<16} {r['cards_per_minute_in_reader']:8.0f} cards/min while in the "
              f"reader, {r['cards_per_minute_wall']:.0f} incl. card swaps ({r['cards']} cards, "
              f"crypto {r['crypto_share_in_reader']:.0%})")
    print("  target: ≥ 600 cards/min for 2.0 cards in-process")


if __name__ == "__main__":
    main()
