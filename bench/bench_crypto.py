"""SM3/SM4 throughput and SM2 sign/verify latency: sbcard vs pure-Python gmssl vs OpenSSL.

    python bench/bench_crypto.py [--n 300] [--json]

Prints figures and their ratios to the targets (SM3/SM4 at OpenSSL's single-core rate, i.e.
at least 0.9x ``openssl speed -evp`` on the same machine, with the speed-up over gmssl beside
it; SM2 sign and verify within 3x of ``openssl speed sm2``); it asserts nothing. Every mode
runs on one core in one OpenSSL call (the old split across threads is gone with the 500x-gmssl
target it served).
SM2 timings are medians of single operations on a 20-byte message, each including the
Z/SM3 step and key handling, as ``openssl speed`` does. Pure-Python rows use fewer rounds.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbcard.crypto import sm2, symmetric

SIZE = 64 * 1024
MSG = b"0123456789abcdefghij"  # 20 bytes
#: Bulk SM3/SM4 at OpenSSL's single-core rate, measurement noise aside.
SM34_TARGET = 0.9
SM2_TARGET = 3.0


def median_seconds(func: Callable[[], object], rounds: int) -> float:
    func()  # warm-up: imports, library loading, caches
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- SM3 / SM4


def symmetric_figures(rounds: int) -> dict:
    from gmssl import func, sm3, sm4

    data = os.urandom(SIZE)
    key, iv = os.urandom(16), os.urandom(16)
    slow = max(3, rounds // 100)

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
        t_ours = median_seconds(ours, rounds)
        t_gmssl = median_seconds(theirs, slow)
        ours_mib_s = SIZE / t_ours / 2**20
        reference = openssl_speed_evp(*native[name])
        out[name] = {
            "ours_mib_s": ours_mib_s,
            "gmssl_kib_s": SIZE / t_gmssl / 2**10,
            "openssl_speed_mib_s": reference,
            "speedup": t_gmssl / t_ours,
            "vs_openssl": ours_mib_s / reference if reference else None,
            "target_vs_openssl": SM34_TARGET,
        }
    return out


def openssl_speed_evp(cipher: str, decrypt: bool = False) -> float | None:
    """MiB/s of ``openssl speed -evp CIPHER`` on 64 KiB buffers: OpenSSL on one core."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    run = subprocess.run(
        [exe, "speed", "-seconds", "1", "-bytes", str(SIZE)]
        + (["-decrypt"] if decrypt else [])
        + ["-evp", cipher],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = run.stdout.strip().splitlines()
    match = re.search(r"\s([\d.]+)k\s*$", lines[-1]) if lines else None
    return float(match.group(1)) * 1000 / 2**20 if match else None


# --------------------------------------------------------------------------- SM2


def openssl_speed_sm2() -> dict | None:
    """Per-operation µs from ``openssl speed -seconds 1 sm2``; None if unavailable."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    run = subprocess.run(
        [exe, "speed", "-seconds", "1", "sm2"], capture_output=True, text=True, check=False
    )
    for line in run.stdout.splitlines():
        match = re.search(r"SM2.*?\s([\d.]+)\s+([\d.]+)\s*$", line)
        if match and "bits" in line:
            sign_rate, verify_rate = float(match.group(1)), float(match.group(2))
            version = subprocess.run(
                [exe, "version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            return {
                "sign_us": 1e6 / sign_rate,
                "verify_us": 1e6 / verify_rate,
                "version": version,
            }
    return None


def raw_gmssl_key() -> tuple[str, str]:
    # gmssl 3.2.2 mangles public keys whose hex starts with 0 or 4; pick one it can hold.
    while True:
        key = sm2.PrivateKey.generate()
        pub_hex = key.public_key.to_hex(prefix=False)
        if pub_hex[0] not in "04":
            return key.to_hex(), pub_hex


def sm2_figures(rounds: int) -> dict:
    from gmssl import sm2 as gmssl_sm2

    slow = max(5, rounds // 20)
    key = sm2.PrivateKey.generate()
    rows: dict[str, dict] = {}
    backends: list[tuple[str, sm2.Sm2Backend]] = []
    for name in ("libcrypto", "gmssl"):
        try:
            backends.append((name, sm2.get_backend(name)))
        except Exception as err:  # report it, do not abort the benchmark
            rows[f"sbcard {name} backend"] = {"error": str(err)}
    default_name = sm2.default_backend().name
    for name, backend in backends:
        n = rounds if name == "libcrypto" else slow
        sig = sm2.sign(key, MSG, backend=backend)
        rows[f"sbcard {name} backend" + (" (default)" if name == default_name else "")] = {
            "sign_us": 1e6 * median_seconds(lambda b=backend: sm2.sign(key, MSG, backend=b), n),
            "verify_us": 1e6
            * median_seconds(
                lambda b=backend, s=sig: sm2.verify(key.public_key, MSG, s, backend=b), n
            ),
        }
    priv_hex, pub_hex = raw_gmssl_key()
    raw = gmssl_sm2.CryptSM2(private_key=priv_hex, public_key=pub_hex)
    raw_sig = raw.sign_with_sm3(MSG)
    rows["raw gmssl 3.2.2"] = {
        "sign_us": 1e6 * median_seconds(lambda: raw.sign_with_sm3(MSG), slow),
        "verify_us": 1e6 * median_seconds(lambda: raw.verify_with_sm3(raw_sig, MSG), slow),
    }
    reference = openssl_speed_sm2()
    for row in rows.values():
        if reference and "sign_us" in row:
            row["sign_vs_openssl"] = row["sign_us"] / reference["sign_us"]
            row["verify_vs_openssl"] = row["verify_us"] / reference["verify_us"]
    return {"rows": rows, "openssl_speed": reference, "target_ratio": SM2_TARGET}


# --------------------------------------------------------------------------- report


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="rounds for the fast implementations")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    results = {"symmetric": symmetric_figures(args.n), "sm2": sm2_figures(args.n)}
    if args.json:
        print(json.dumps(results, indent=2))
        return

    print(f"SM3 / SM4 over {SIZE // 1024} KiB (target: at least {SM34_TARGET}x openssl speed, "
          "one core)")
    print(f"  {'':18}{'sbcard':>12}{'gmssl':>14}{'speedup':>10}{'openssl speed':>22}")
    for name, row in results["symmetric"].items():
        ratio = row["vs_openssl"]
        verdict = ("n/a" if ratio is None else "ok" if ratio >= SM34_TARGET
                   else "below target")
        native = row["openssl_speed_mib_s"]
        native_text = "n/a" if native is None else f"{native:.1f} MiB/s"
        print(
            f"  {name:18}{row['ours_mib_s']:>8.1f} MiB/s{row['gmssl_kib_s']:>8.1f} KiB/s"
            f"{row['speedup']:>9.0f}x  {verdict:13}{native_text:>14}"
        )

    sm2_res = results["sm2"]
    ref = sm2_res["openssl_speed"]
    print(f"\nSM2 median per operation (target: within {SM2_TARGET:.0f}x of openssl speed)")
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
        print(f"  {name:34}{row['sign_us']:>9.0f} µs{row['verify_us']:>11.0f} µs{ratios}")


if __name__ == "__main__":
    main()
