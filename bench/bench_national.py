"""iReadCardBas through libSSCardDriver.so (C, dlopen) against the Python API, same card.

    python bench/bench_national.py [--n 200] [--json]

Targets (issue 13): the C library within 1.1× of the Python API per call; the first call from
C, interpreter start inside the library included, under 300 ms. The card is the in-process
simulated 3.0 card (persona v3, SM4, EF06 behind RKSSSE) with the public test keys, so each
call is the whole national flow: SELECT, EF05, INTERNAL AUTHENTICATE, RKSSSE, EF06.
The first call alone is also timed as the median of ``--first-calls`` fresh C processes on a
2.0 (3DES) and the 3.0 card, with the load average beside it (the figure moves with load).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import compile_bytecode  # noqa: E402

ENV = {"SBCARD_SIM": "v3", "SBCARD_KEYS": "test", "HOME": "/nonexistent"}

PYTHON_SIDE = textwrap.dedent("""
    import json, statistics, sys, time
    t0 = time.perf_counter()
    from sbcard.national.driver import SSCardDriver
    d = SSCardDriver()
    code, _ = d.iReadCardBas(1)
    first = (time.perf_counter() - t0) * 1000
    assert code == 0, code
    times = []
    for _ in range(int(sys.argv[1])):
        s = time.perf_counter()
        d.iReadCardBas(1)
        times.append((time.perf_counter() - s) * 1000)
    print(json.dumps({"first_call_ms": first, "median_ms": statistics.median(times),
                      "calls": len(times)}))
""")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.pop("PYTHONPATH", None)
    env.update(ENV)
    env.update(extra)
    return {k: v for k, v in env.items() if v}


def _timed(cmd: list[str], env: dict[str, str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    out = json.loads(done.stdout)
    out["process_first_call_ms"] = (time.perf_counter() - start) * 1000
    return out


def _median(runs: list[dict]) -> dict:
    """Per figure, the median of the rounds (the rounds alternate which face runs first)."""
    return {k: runs[0][k] if k == "calls" else statistics.median(r[k] for r in runs)
            for k in runs[0]}


def _built(workdir: Path) -> tuple[Path, Path]:
    """The library and the C caller, built once per work folder."""
    from sbcard.national.build_native import build

    exe = workdir / "bench_sscard"
    lib = next((workdir / "lib").glob("libSSCardDriver.*"), None)
    if lib is None or not exe.exists():
        lib = build(workdir / "lib")
        subprocess.run(["gcc", "-O2", "-o", str(exe),
                        str(ROOT / "bench/native/bench_sscard.c"), "-ldl"], check=True)
    return lib, exe


def measure(n: int, rounds: int, workdir: Path, **env: str) -> dict:
    """Each face ``rounds`` times in fresh processes, alternating which runs first (a round's
    first process found the card as the other face left it), the median of the rounds."""
    lib, exe = _built(workdir)
    runs: dict[str, list[dict]] = {"c": [], "py": []}
    commands = {"c": [str(exe), str(lib), str(n), "1"],
                "py": [sys.executable, "-c", PYTHON_SIDE, str(n)]}
    load_before = os.getloadavg()[0]
    for i in range(rounds):                 # interleaved, so load changes hit both sides
        for face in ("c", "py") if i % 2 == 0 else ("py", "c"):
            runs[face].append(_timed(commands[face], _env(**env)))
    c, py = _median(runs["c"]), _median(runs["py"])
    return {"c_library": c, "python_api": py, "c_vs_python": c["median_ms"] / py["median_ms"],
            "rounds": rounds, "load_average": [load_before, os.getloadavg()[0]]}


#: The cards of the first-call figure: a 2.0 card (3DES, no PKI) and the 3.0 card (SM4; the
#: simulator installs its PKI application but makes no SM2 key pair or certificate, since
#: iReadCardBas never uses them).
FIRST_CALL_CARDS = {"2.0": "demo", "3.0": "v3"}


def first_calls(runs: int, workdir: Path) -> dict:
    """Median (and spread) of the first iReadCardBas of ``runs`` fresh C processes per card,
    interleaved, with the 1-minute load average before and after."""
    lib, exe = _built(workdir)
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {card: [] for card in FIRST_CALL_CARDS}
    for _ in range(runs):
        for card, persona in FIRST_CALL_CARDS.items():
            out = _timed([str(exe), str(lib), "0", "1"], _env(SBCARD_SIM=persona))
            times[card].append(out["first_call_ms"])
    result: dict = {card: {"median_ms": statistics.median(t), "min_ms": min(t),
                           "max_ms": max(t), "runs": len(t)} for card, t in times.items()}
    result["load_average"] = [load_before, os.getloadavg()[0]]
    result["cpus"] = os.cpu_count()
    return result


def through_pcscd(n: int, rounds: int, workdir: Path) -> dict | None:
    from bench._served import READER, pcscd_ready, served
    from sbcard.sim.persona import load_persona

    if not pcscd_ready():
        return None
    with served(load_persona("v3").build_card()):
        return measure(n, rounds, workdir, SBCARD_SIM="", SBCARD_READER=READER)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--pcscd-n", type=int, default=100, help="calls per process through pcscd")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--first-calls", type=int, default=9,
                    help="fresh processes per card for the first-call median (0: skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    compile_bytecode()            # first calls are for an installed sbcard
    with tempfile.TemporaryDirectory() as tmp:
        result = {"in_process": measure(args.n, args.rounds, Path(tmp)),
                  "pcscd": through_pcscd(args.pcscd_n, args.rounds, Path(tmp))}
        if args.first_calls:
            result["first_call"] = first_calls(args.first_calls, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return
    for where, r in result.items():
        if where == "first_call":
            print(f"first call from C, median of {args.first_calls} fresh processes "
                  f"(load average {r['load_average'][0]:.1f}→{r['load_average'][1]:.1f} on "
                  f"{r['cpus']} CPUs; target < 300 ms)")
            for card in FIRST_CALL_CARDS:
                x = r[card]
                print(f"  {card} card: {x['median_ms']:.0f} ms (min {x['min_ms']:.0f}, "
                      f"max {x['max_ms']:.0f})")
            continue
        if r is None:
            print(f"{where}: unavailable (no pcscd with vpcd)")
            continue
        c, py = r["c_library"], r["python_api"]
        print(f"iReadCardBas, v3 card, {where} (median of {args.rounds} alternating rounds, "
              f"load average {r['load_average'][0]:.1f}→{r['load_average'][1]:.1f})")
        print(f"  per call (median): C library {c['median_ms']:.3f} ms, Python API "
              f"{py['median_ms']:.3f} ms, C/Python {r['c_vs_python']:.2f}× (target ≤ 1.1×)")
        print(f"  first call: C {c['first_call_ms']:.0f} ms (dlopen + interpreter start + "
              f"imports + read; target < 300 ms), Python {py['first_call_ms']:.0f} ms "
              f"(imports + read)")


if __name__ == "__main__":
    main()
