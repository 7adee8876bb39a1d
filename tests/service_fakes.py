"""A stand-in for ``SSCardDriver`` in the service's protocol and security tests.

It answers the national functions with fixed synthetic data, records every call's start
and end (to prove calls never overlap), and can be told to be slow. The end-to-end tests
(test_service_e2e.py) use the real driver on the simulated card instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

LINE = ("519900|519900199001010015|A00000011|519900D15600000500000001FFFFFFFF|测试一|"
        "00814A44468660519900000001|2.00|20210601|20310601|||")


@dataclass
class FakeDriver:
    delay_s: float = 0.0
    #: When given, every operation lasts until the test sets it (a card the test holds busy).
    hold: threading.Event | None = None
    calls: list[tuple[str, float, float]] = field(default_factory=list)
    pin_changes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _active: int = 0
    overlaps: int = 0

    def _enter(self, name: str) -> float:
        with self._lock:
            self._active += 1
            if self._active > 1:
                self.overlaps += 1
        return time.perf_counter()

    def _leave(self, name: str, t0: float) -> None:
        with self._lock:
            self._active -= 1
            self.calls.append((name, t0, time.perf_counter()))

    def _work(self, name: str) -> None:
        t0 = self._enter(name)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.hold is not None and not self.hold.wait(30):
                raise TimeoutError("the test never let the operation end")
        finally:
            self._leave(name, t0)

    def iReadCardBas(self, iType: int) -> tuple[int, str]:
        self._work("iReadCardBas")
        if iType not in (1, 2, 3, 4):
            return -1, "卡类型不正确"
        return 0, LINE

    def read_fields(self, iType: int) -> tuple[int, dict | str]:
        self._work("read_fields")
        return 0, {"region_code": "519900", "ssn": "519900199001010015", "name": "测试一"}

    def iVerifyPIN(self, iType: int) -> tuple[int, str]:
        self._work("iVerifyPIN")
        return 0, ""

    def iChangePIN(self, iType: int) -> tuple[int, str]:
        self._work("iChangePIN")
        self.pin_changes += 1
        return 0, ""

    def iReadCardBas_HSM_Step1(self, iType: int) -> tuple[int, str]:
        self._work("iReadCardBas_HSM_Step1")
        return 0, "519900|3B6D|01|519900D156|0000000000000000|1122334455667788||||"

    def iReadCardBas_HSM_Step2(self, pKey: str) -> tuple[int, str]:
        self._work("iReadCardBas_HSM_Step2")
        return (0, LINE) if len(pKey) == 48 else (-23, "传入数据不合法")
