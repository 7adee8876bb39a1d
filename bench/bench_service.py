"""``sbcard serve``: latency of iReadCardBas through the service, and what the service adds.

    python bench/bench_service.py [--runs 300] [--json]

The service runs in its own process (``sbcard serve --sim demo``: the in-process simulated
card and PSAM), the client here. Figures: median and p99 of iReadCardBas over WebSocket
(function style, one connection, request after request) and over HTTP (REST style,
keep-alive), the bare driver call on the same simulated card in this process, and the
service's overhead = median through the service − median bare. Target (issue 14): overhead
≤ 5 ms median. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from sbcard.national.driver import SSCardDriver  # noqa: E402
from sbcard.service.run import sim_driver_config  # noqa: E402

TARGET_OVERHEAD_MS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": statistics.median(ordered) * 1e3, "p99_ms": p99 * 1e3,
            "n": len(ordered)}


def bare(runs: int) -> dict[str, float]:
    driver = SSCardDriver(sim_driver_config("demo"))
    driver.iReadCardBas(3)                               # warm: PSAM opened, keys derived
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        code, _ = driver.iReadCardBas(3)
        samples.append(time.perf_counter() - t0)
        assert code == 0
    driver.close()
    return summary(samples)


async def through_service(base: str, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    async with aiohttp.ClientSession() as session:
        ws_samples, http_samples = [], []
        async with session.ws_connect(base.replace("http", "ws") + "/ws/function") as ws:
            message = json.dumps({"function": "iReadCardBas", "iType": 3})
            for i in range(runs + 5):
                t0 = time.perf_counter()
                await ws.send_str(message)
                answer = json.loads(await ws.receive_str())
                if i >= 5:
                    ws_samples.append(time.perf_counter() - t0)
                assert answer["success"] == 1, answer
        for i in range(runs + 5):
            t0 = time.perf_counter()
            async with session.get(base + "/readcard/entry?param=sicard") as r:
                body = await r.json()
            if i >= 5:
                http_samples.append(time.perf_counter() - t0)
            assert body["code"] == 200, body
    return summary(ws_samples), summary(http_samples)


def wait_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("sbcard serve exited")
        try:
            with urllib.request.urlopen(base + "/v1/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("sbcard serve did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "sbcard", "serve", "--sim", "demo",
                             "--port", str(port), "--function-port", "0", "--decard-port", "0",
                             "--rest-port", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_up(base, proc)
        ws, http = asyncio.run(through_service(base, args.runs))
    finally:
        proc.terminate()
        proc.wait(10)
    card = bare(args.runs)
    results = {
        "ireadcardbas_websocket": ws, "ireadcardbas_http": http, "ireadcardbas_bare": card,
        "overhead_websocket_median_ms": ws["median_ms"] - card["median_ms"],
        "overhead_http_median_ms": http["median_ms"] - card["median_ms"],
        "targets": {"overhead_median_ms": TARGET_OVERHEAD_MS},
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"sbcard serve, iReadCardBas on the simulated card ({args.runs} calls each)")
    for name, key in (("WebSocket (function style)", "ireadcardbas_websocket"),
                      ("HTTP (REST style)", "ireadcardbas_http"),
                      ("bare driver call", "ireadcardbas_bare")):
        r = results[key]
        print(f"  {name:<28} median {r['median_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms")
    print(f"  service overhead (median): WebSocket "
          f"{results['overhead_websocket_median_ms']:.2f} ms, HTTP "
          f"{results['overhead_http_median_ms']:.2f} ms   target ≤ {TARGET_OVERHEAD_MS:.0f} ms")


if __name__ == "__main__":
    main()
