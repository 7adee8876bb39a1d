"""SM3/SM4 throughput and SM2 sign/verify latency: sbcard vs pure-Python gmssl vs OpenSSL.

    python bench/bench_crypto.py [--rounds 5] [--order bracket|alternate] [--clock cpu|wall]
                                 [--n 300] [--json]

Prints figures and their ratios to the targets (SM3/SM4 at OpenSSL's single-core rate, i.e.
at least 0.9x ``openssl speed -evp`` on the same machine, with the speed-up over gmssl beside
it; SM2 sign and verify within 3x of ``openssl speed sm2``); it asserts nothing. Every mode
runs on one core in one OpenSSL call (the old split across threads is gone with the 500x-gmssl
target it served).

Ours and OpenSSL's are measured in turn, in ``--rounds`` rounds per mode (5): each round is
one ``openssl speed -seconds 1`` run and ~1 s of our loop on the same 64 KiB buffer (or SM2
operation). By default ours runs half before and half after OpenSSL's second (``--order
bracket``), so that a burst of CPU steal, a frequency change or a neighbour's load during
the round falls on both sides instead of one (``--order alternate``: ours before OpenSSL in
even rounds, after it in odd ones). A round's ratio compares the two sides of that round;
the figure reported is the median of the rounds' ratios (with their range), beside the
median of each side. ``openssl speed`` divides by the CPU user time it used, not wall time;
by default ours is divided by our process CPU time (user + system) to match, so time spent
descheduled on a shared machine counts on neither side (``--clock wall``: wall time for
ours and ``openssl speed -elapsed``).
The default SM2 backend is timed like ``openssl speed sm2``: operations on a 20-byte message
(each including the Z/SM3 step and key handling) counted for ~1 s, time per operation = time
/ count. Other SM2 rows and the pure-Python rows are medians of single operations, timed once,
with fewer rounds, against the median of OpenSSL's rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbcard.crypto import sm2, symmetric

SIZE = 64 * 1024
MSG = b"0123456789abcdefghij"  # 20 bytes
#: Bulk SM3/SM4 at OpenSSL's single-core rate, measurement noise aside.
SM34_TARGET = 0.9
SM2_TARGET = 3.0


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def median_seconds(func: Callable[[], object], rounds: int,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    func()  # warm-up: imports, library loading, caches
    times = []
    for _ in range(rounds):
        start = clock()
        func()
        times.append(clock() - start)
    return statistics.median(times)


def timed_loop(func: Callable[[], object], clock: Callable[[], float],
               seconds: float) -> tuple[float, int]:
    """Call ``func`` for ``seconds`` of wall time; return the time ``clock`` counted and the calls.

    Like ``openssl speed -seconds``: run until the wall-clock time is up, then time / calls is
    the time per call.
    """
    func()  # warm-up
    count = 0
    end = time.perf_counter() + seconds
    start = clock()
    while True:
        func()
        count += 1
        if time.perf_counter() >= end:
            break
    return clock() - start, count


#: Ours for one round: {figure: (clock seconds, calls)}, given the wall seconds to run.
Ours = Callable[[float], dict[str, tuple[float, int]]]


def measure_rounds(rounds: int, order: str, ours: Ours, theirs: Callable[[], dict | None]
                   ) -> list[dict]:
    """``rounds`` rounds of ours (~1 s) and ``theirs()`` (one ``openssl speed -seconds 1``).

    ``bracket``: ours runs half before and half after OpenSSL in every round, so a drift
    of the machine's speed during the round falls on both sides alike; ``alternate``: ours
    for 1 s, before OpenSSL in even rounds and after it in odd ones.
    """
    out = []
    for i in range(rounds):
        if order == "bracket":
            before = ours(0.5)
            ref = theirs()
            after = ours(0.5)
            mine = {k: (before[k][0] + after[k][0], before[k][1] + after[k][1])
                    for k in before}
            first = "ours, half before and half after"
        elif i % 2 == 0:
            first = "ours"
            mine, ref = ours(1.0), theirs()
        else:
            first = "openssl"
            ref = theirs()
            mine = ours(1.0)
        out.append({"first": first, "ours": mine, "openssl": ref})
    return out


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio_summary(ratios: list[float | None]) -> tuple[float | None, list[float] | None]:
    """Median of the per-round ratios and their [min, max]; None when OpenSSL gave none."""
    present = [r for r in ratios if r is not None]
    if not present:
        return None, None
    return statistics.median(present), [min(present), max(present)]


# --------------------------------------------------------------------------- SM3 / SM4


def symmetric_figures(n: int, rounds: int, order: str, clock_name: str) -> dict:
    from gmssl import func, sm3, sm4

    clock = CLOCKS[clock_name]
    data = os.urandom(SIZE)
    key, iv = os.urandom(16), os.urandom(16)
    slow = max(3, n // 100)

    g_ecb = sm4.CryptSM4(sm4.SM4_ENCRYPT, padding_mode=-1)  # -1: no padding
    g_ecb.set_key(key, sm4.SM4_ENCRYPT)
    g_cbc = sm4.CryptSM4(sm4.SM4_ENCRYPT)
    g_cbc.set_key(key, sm4.SM4_ENCRYPT)
    g_ecb_dec = sm4.CryptSM4(sm4.SM4_DECRYPT, padding_mode=-1)
    g_ecb_dec.set_key(key, sm4.SM4_DECRYPT)
    g_cbc_dec = sm4.CryptSM4(sm4.SM4_DECRYPT, padding_mode=-1)
    g_cbc_dec.set_key(key, sm4.SM4_DECRYPT)

    cases = {
        "sm3": (
            lambda: symmetric.sm3(data),
            lambda: sm3.sm3_hash(func.bytes_to_list(data)),
        ),
        "sm4_ecb_encrypt": (
            lambda: symmetric.sm4_ecb_encrypt(key, data),
            lambda: g_ecb.crypt_ecb(data),
        ),
        "sm4_ecb_decrypt": (
            lambda: symmetric.sm4_ecb_decrypt(key, data),
            lambda: g_ecb_dec.crypt_ecb(data),
        ),
        "sm4_cbc_encrypt": (
            lambda: symmetric.sm4_cbc_encrypt(key, data, iv),
            lambda: g_cbc.crypt_cbc(iv, data),  # gmssl adds one PKCS#7 block here
        ),
        "sm4_cbc_decrypt": (
            lambda: symmetric.sm4_cbc_decrypt(key, data, iv),
            lambda: g_cbc_dec.crypt_cbc(iv, data),
        ),
    }
    native = {
        "sm3": ("sm3", False),
        "sm4_ecb_encrypt": ("sm4-ecb", False),
        "sm4_ecb_decrypt": ("sm4-ecb", True),
        "sm4_cbc_encrypt": ("sm4-cbc", False),
        "sm4_cbc_decrypt": ("sm4-cbc", True),
    }
    out = {}
    for name, (ours, theirs) in cases.items():
        cipher, decrypt = native[name]
        done = measure_rounds(rounds, order, partial(ours_round, ours, clock),
                              partial(openssl_speed_evp, cipher, decrypt, clock_name))
        per_round = []
        for r in done:
            elapsed, calls = r["ours"]["op"]
            mine = SIZE * calls / elapsed / 2**20
            ref = r["openssl"]["mib_s"] if r["openssl"] else None
            per_round.append({"first": r["first"], "ours_mib_s": mine, "openssl_mib_s": ref,
                              "ratio": mine / ref if ref else None})
        ours_mib_s = statistics.median(x["ours_mib_s"] for x in per_round)
        vs_openssl, spread = ratio_summary([x["ratio"] for x in per_round])
        t_gmssl = median_seconds(theirs, slow, clock)
        out[name] = {
            "ours_mib_s": ours_mib_s,
            "gmssl_kib_s": SIZE / t_gmssl / 2**10,
            "openssl_speed_mib_s": median_or_none([x["openssl_mib_s"] for x in per_round]),
            "speedup": ours_mib_s * 2**20 / (SIZE / t_gmssl),
            "vs_openssl": vs_openssl,
            "vs_openssl_range": spread,
            "target_vs_openssl": SM34_TARGET,
            "rounds": per_round,
        }
    return out


def ours_round(func: Callable[[], object], clock: Callable[[], float], seconds: float
               ) -> dict[str, tuple[float, int]]:
    return {"op": timed_loop(func, clock, seconds)}


def openssl_speed_evp(cipher: str, decrypt: bool = False, clock_name: str = "cpu"
                      ) -> dict | None:
    """MiB/s of ``openssl speed -evp CIPHER`` on 64 KiB buffers: OpenSSL on one core."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    run = subprocess.run(
        [exe, "speed", "-seconds", "1", "-bytes", str(SIZE)]
        + (["-elapsed"] if clock_name == "wall" else [])
        + (["-decrypt"] if decrypt else [])
        + ["-evp", cipher],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = run.stdout.strip().splitlines()
    match = re.search(r"\s([\d.]+)k\s*$", lines[-1]) if lines else None
    return {"mib_s": float(match.group(1)) * 1000 / 2**20} if match else None


# --------------------------------------------------------------------------- SM2


def openssl_speed_sm2(clock_name: str = "cpu") -> dict | None:
    """Per-operation µs from ``openssl speed -seconds 1 sm2``; None if unavailable."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    run = subprocess.run(
        [exe, "speed", "-seconds", "1"] + (["-elapsed"] if clock_name == "wall" else [])
        + ["sm2"],
        capture_output=True, text=True, check=False,
    )
    for line in run.stdout.splitlines():
        match = re.search(r"SM2.*?\s([\d.]+)\s+([\d.]+)\s*$", line)
        if match and "bits" in line:
            sign_rate, verify_rate = float(match.group(1)), float(match.group(2))
            return {"sign_us": 1e6 / sign_rate, "verify_us": 1e6 / verify_rate}
    return None


def openssl_version() -> str | None:
    exe = shutil.which("openssl")
    if exe is None:
        return None
    return subprocess.run([exe, "version"], capture_output=True, text=True,
                          check=False).stdout.strip()


def raw_gmssl_key() -> tuple[str, str]:
    # gmssl 3.2.2 mangles public keys whose hex starts with 0 or 4; pick one it can hold.
    while True:
        key = sm2.PrivateKey.generate()
        pub_hex = key.public_key.to_hex(prefix=False)
        if pub_hex[0] not in "04":
            return key.to_hex(), pub_hex


def sm2_figures(n: int, rounds: int, order: str, clock_name: str) -> dict:
    from gmssl import sm2 as gmssl_sm2

    clock = CLOCKS[clock_name]
    slow = max(5, n // 20)
    key = sm2.PrivateKey.generate()
    rows: dict[str, dict] = {}
    backends: list[tuple[str, sm2.Sm2Backend]] = []
    for name in ("libcrypto", "gmssl"):
        try:
            backends.append((name, sm2.get_backend(name)))
        except Exception as err:  # report it, do not abort the benchmark
            rows[f"sbcard {name} backend"] = {"error": str(err)}
    default_name = sm2.default_backend().name

    # The default backend against ``openssl speed sm2``, alternately.
    reference: dict | None = None
    default = dict(backends).get(default_name)
    if default is not None:
        sig = sm2.sign(key, MSG, backend=default)

        def ours(seconds: float) -> dict[str, tuple[float, int]]:
            return {
                "sign": timed_loop(lambda: sm2.sign(key, MSG, backend=default), clock,
                                   seconds / 2),
                "verify": timed_loop(
                    lambda: sm2.verify(key.public_key, MSG, sig, backend=default), clock,
                    seconds / 2),
            }

        done = measure_rounds(rounds, order, ours, lambda: openssl_speed_sm2(clock_name))
        per_round = []
        for r in done:
            row = {"first": r["first"]}
            for op in ("sign", "verify"):
                elapsed, calls = r["ours"][op]
                mine = 1e6 * elapsed / calls
                ref = r["openssl"][f"{op}_us"] if r["openssl"] else None
                row |= {f"ours_{op}_us": mine, f"openssl_{op}_us": ref,
                        f"{op}_ratio": mine / ref if ref else None}
            per_round.append(row)
        entry: dict = {}
        for op in ("sign", "verify"):
            entry[f"{op}_us"] = statistics.median(x[f"ours_{op}_us"] for x in per_round)
            ratio, spread = ratio_summary([x[f"{op}_ratio"] for x in per_round])
            if ratio is not None:
                entry[f"{op}_vs_openssl"] = ratio
                entry[f"{op}_vs_openssl_range"] = spread
        entry["rounds"] = per_round
        rows[f"sbcard {default_name} backend (default)"] = entry
        sign_ref = median_or_none([x["openssl_sign_us"] for x in per_round])
        verify_ref = median_or_none([x["openssl_verify_us"] for x in per_round])
        if sign_ref is not None and verify_ref is not None:
            reference = {"sign_us": sign_ref, "verify_us": verify_ref,
                         "version": openssl_version(), "rounds": len(per_round)}

    # The other rows: medians of single operations, against the median of OpenSSL's rounds.
    for name, backend in backends:
        if name == default_name:
            continue
        sig = sm2.sign(key, MSG, backend=backend)
        rows[f"sbcard {name} backend"] = {
            "sign_us": 1e6 * median_seconds(
                partial(sm2.sign, key, MSG, backend=backend), slow, clock),
            "verify_us": 1e6 * median_seconds(
                partial(sm2.verify, key.public_key, MSG, sig, backend=backend), slow, clock),
        }
    priv_hex, pub_hex = raw_gmssl_key()
    raw = gmssl_sm2.CryptSM2(private_key=priv_hex, public_key=pub_hex)
    raw_sig = raw.sign_with_sm3(MSG)
    rows["raw gmssl 3.2.2"] = {
        "sign_us": 1e6 * median_seconds(lambda: raw.sign_with_sm3(MSG), slow, clock),
        "verify_us": 1e6 * median_seconds(lambda: raw.verify_with_sm3(raw_sig, MSG), slow,
                                          clock),
    }
    for row in rows.values():
        if reference and "sign_us" in row and "sign_vs_openssl" not in row:
            row["sign_vs_openssl"] = row["sign_us"] / reference["sign_us"]
            row["verify_vs_openssl"] = row["verify_us"] / reference["verify_us"]
    return {"rows": rows, "openssl_speed": reference, "target_ratio": SM2_TARGET}


# --------------------------------------------------------------------------- report


def spread_text(spread: list[float] | None) -> str:
    return "" if not spread else f" ({spread[0]:.2f}-{spread[1]:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5,
                    help="alternating rounds of ours and openssl speed, ~1 s each side")
    ap.add_argument("--order", choices=("bracket", "alternate"), default="bracket",
                    help="ours half before and half after openssl in each round, or ours "
                         "before openssl in even rounds and after it in odd ones")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="divide by CPU time (as openssl speed does) or by wall time")
    ap.add_argument("--n", type=int, default=300,
                    help="sets the operations timed for the gmssl rows (n/100, n/20)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    results = {
        "method": {"rounds": args.rounds, "order": args.order, "seconds_per_side": 1,
                   "clock": args.clock, "ratio": "median of the per-round ratios"},
        "symmetric": symmetric_figures(args.n, args.rounds, args.order, args.clock),
        "sm2": sm2_figures(args.n, args.rounds, args.order, args.clock),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return

    print(f"SM3 / SM4 over {SIZE // 1024} KiB (target: at least {SM34_TARGET}x openssl speed, "
          f"one core; medians of {args.rounds} rounds, {args.order}, {args.clock} time)")
    print(f"  {'':18}{'sbcard':>12}{'gmssl':>14}{'speedup':>10}{'openssl speed':>16}"
          f"{'ratio (range)':>22}")
    for name, row in results["symmetric"].items():
        ratio = row["vs_openssl"]
        verdict = ("n/a" if ratio is None else "ok" if ratio >= SM34_TARGET
                   else "below target")
        native = row["openssl_speed_mib_s"]
        native_text = "n/a" if native is None else f"{native:.1f} MiB/s"
        ratio_text = ("" if ratio is None
                      else f"{ratio:.2f}x{spread_text(row['vs_openssl_range'])} {verdict}")
        print(
            f"  {name:18}{row['ours_mib_s']:>8.1f} MiB/s{row['gmssl_kib_s']:>8.1f} KiB/s"
            f"{row['speedup']:>9.0f}x{native_text:>16}  {ratio_text}"
        )

    sm2_res = results["sm2"]
    ref = sm2_res["openssl_speed"]
    print(f"\nSM2 per operation (target: within {SM2_TARGET:.0f}x of openssl speed)")
    if ref:
        print(
            f"  {'openssl speed sm2':34}{ref['sign_us']:>9.0f} µs{ref['verify_us']:>11.0f} µs"
            f"   ({ref['version']})"
        )
    else:
        print("  openssl speed sm2: unavailable (no openssl binary with SM2)")
    print(f"  {'':34}{'sign':>12}{'verify':>14}{'sign/ossl':>11}{'verify/ossl':>13}")
    for name, row in sm2_res["rows"].items():
        if "error" in row:
            print(f"  {name:34}unavailable: {row['error']}")
            continue
        ratios = ""
        if ref:
            ratios = f"{row['sign_vs_openssl']:>10.2f}x{row['verify_vs_openssl']:>12.2f}x"
            if "sign_vs_openssl_range" in row:
                ratios += (f"   sign{spread_text(row['sign_vs_openssl_range'])}, "
                           f"verify{spread_text(row['verify_vs_openssl_range'])}")
        print(f"  {name:34}{row['sign_us']:>9.0f} µs{row['verify_us']:>11.0f} µs{ratios}")


if __name__ == "__main__":
    main()
