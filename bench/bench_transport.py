"""APDU round trip: in-process vs through pcscd + vpcd, and what tracing costs.

    python bench/bench_transport.py [--n 500] [--json]

Prints medians; asserts nothing. The pcscd rows need pcscd with vsmartcard-vpcd running
(``./.ci/pcscd``); they are reported as unavailable otherwise. Each pcscd row serves the demo
card on vpcd slot 1 ("Virtual PCD 00 01") from a thread in this process.

"naive link" is the card side written the obvious way (length and payload in two sends, no
TCP_NODELAY/TCP_QUICKACK): it shows the ~40 ms delayed-ACK stall that sbcard's link avoids.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._served import READER, pcscd_ready, served
from sbcard.apdu.trace import TraceLayer, format_record
from sbcard.sim.persona import load_persona
from sbcard.sim.vpcd import VpcdServer
from sbcard.transport.simulated import SimulatedTransport

READ = bytes.fromhex("00B2072C00")
SELECT = bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF00")


def median_ms(transport, n: int) -> float:
    transport.transmit(SELECT)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        transport.transmit(READ)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class NaiveVpcdServer(VpcdServer):
    """The obvious implementation, for comparison only."""

    def connect_once(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def _serve(self, sock: socket.socket) -> None:
        def recv_exact(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                chunk = sock.recv(n - len(buf))
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            return buf

        def send(payload: bytes) -> None:
            sock.sendall(struct.pack(">H", len(payload)))
            sock.sendall(payload)

        while not self._stop.is_set():
            (length,) = struct.unpack(">H", recv_exact(2))
            payload = recv_exact(length)
            if length == 1:
                if payload[0] == 4:
                    self._atr = self._atr or self.card.power_on()
                    send(self._atr)
                elif payload[0] in (1, 2):
                    self._atr = self.card.power_on()
                continue
            send(self.card.process(payload))


def through_pcscd(server_cls, n: int) -> float | None:
    if not pcscd_ready():
        return None
    from sbcard.transport.pcsc import PcscTransport

    with served(load_persona("demo").build_card(), server_cls):
        t = PcscTransport(READER)
        t.connect()
        try:
            return median_ms(t, n)
        finally:
            t.disconnect()


def trace_overhead(n: int) -> dict:
    lines: list[str] = []
    plain = SimulatedTransport(load_persona("demo").build_card())
    plain.connect()
    traced = TraceLayer(SimulatedTransport(load_persona("demo").build_card()),
                        sink=lines.append)
    traced.connect()
    lines.clear()
    base = median_ms(plain, n)
    with_trace = median_ms(traced, n)
    per_apdu = sum(len(line.encode()) + 1 for line in lines) / len(lines)
    return {"median_ms_plain": base, "median_ms_traced": with_trace,
            "trace_bytes_per_apdu": per_apdu,
            "example": format_record(traced_sample(traced))}


def traced_sample(traced: TraceLayer):
    records = []
    traced.on_record = records.append
    traced.transmit(READ)
    traced.on_record = None
    return records[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="APDUs per measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    in_process = SimulatedTransport(load_persona("demo").build_card())
    in_process.connect()
    results = {
        "in_process_median_ms": median_ms(in_process, args.n),
        "pcscd_median_ms": through_pcscd(VpcdServer, args.n),
        "pcscd_naive_link_median_ms": through_pcscd(NaiveVpcdServer, max(10, args.n // 50)),
        "trace": trace_overhead(args.n),
        "target_pcscd_ms": 0.3,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return

    def fmt(v: float | None) -> str:
        return "unavailable (no pcscd/vpcd)" if v is None else f"{v:.3f} ms"

    t = results["trace"]
    print("APDU round trip (READ RECORD, median)")
    print(f"  in-process simulator      {fmt(results['in_process_median_ms'])}")
    print(f"  through pcscd + vpcd      {fmt(results['pcscd_median_ms'])}   (target ≤ 0.3 ms)")
    print(f"  naive vpcd link           {fmt(results['pcscd_naive_link_median_ms'])}")
    print("Tracing layer")
    print(f"  in-process plain/traced   {t['median_ms_plain']:.4f} / "
          f"{t['median_ms_traced']:.4f} ms")
    print(f"  trace output              {t['trace_bytes_per_apdu']:.0f} bytes per APDU")
    print("  sample:")
    for line in t["example"].splitlines():
        print(f"    {line}")


if __name__ == "__main__":
    main()
