"""The local card service's protocol, security and queue rules, against a stand-in driver
(tests/service_fakes.py). The same service on the real driver and the simulated card is in
test_service_e2e.py."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from sbcard.errors import BadInputError
from sbcard.service.config import ServiceConfig, config_from_mapping
from sbcard.service.logmask import masked_args, masked_mapping
from sbcard.testing.service import ServiceThread, service_config
from tests.service_fakes import LINE, FakeDriver

HIS = "https://his.example.org"


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
def serve(driver: FakeDriver) -> Iterator[Callable[..., ServiceThread]]:
    started: list[ServiceThread] = []

    def start(**settings: Any) -> ServiceThread:
        settings.setdefault("allowed_origins", (HIS,))
        s = ServiceThread(driver, service_config(**settings)).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def run(coro: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            return await coro(session)
    return asyncio.run(main())


def ws_exchange(url: str, messages: list[Any], origin: str | None = None) -> list[dict]:
    async def go(c: aiohttp.ClientSession) -> list[dict]:
        headers = {"Origin": origin} if origin else {}
        async with c.ws_connect(url, headers=headers) as ws:
            out = []
            for m in messages:
                await ws.send_str(m if isinstance(m, str) else json.dumps(m))
                out.append(json.loads(await ws.receive_str(timeout=10)))
            return out
    return run(go)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def raw_get(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
    """A GET with exactly these headers (Host included): http.client does not add one."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, json.loads(body) if body else {}, dict(resp.getheaders())


# -- the three dialects -----------------------------------------------------------------

def test_function_style_answers_with_the_fields_pages_read(serve: Any) -> None:
    s = serve()
    [answer] = ws_exchange(s.url + "/ws/function", [{"function": "iReadCardBas", "iType": 3}])
    assert answer == {"functionName": "iReadCardBas", "success": 1, "pOutInfo": LINE}
    assert answer["pOutInfo"].split("|")[4] == "测试一"   # the page's arr[4] is the name


def test_decard_style_takes_string_arguments_and_answers_result_and_out(serve: Any) -> None:
    s = serve()
    [ok, bad_type] = ws_exchange(s.url + "/ws/decard", [
        {"func": "iReadCardBas", "in": ["3"]}, {"func": "iReadCardBas", "in": ["9"]}])
    assert ok == {"func": "iReadCardBas", "result": "0", "out": [LINE]}
    assert bad_type["result"] == "-1"          # the driver's own code comes through


def test_rest_style_code_message_data(serve: Any) -> None:
    s = serve()

    async def go(c: aiohttp.ClientSession) -> tuple[dict, dict]:
        async with c.get(s.url + "/readcard/entry?param=sicard") as r:
            ok = await r.json()
        async with c.get(s.url + "/readcard/entry?param=idcard") as r:
            other = await r.json()
        return ok, other
    ok, other = run(go)
    assert ok == {"code": 200, "message": "成功 (ok)", "data": LINE, "sign": ""}
    assert other["code"] == 1001 and other["data"] == ""


def test_each_dialect_on_its_own_port_answers_on_any_path(serve: Any) -> None:
    from sbcard.testing.service import free_port

    s = serve(function_port=free_port(), decard_port=free_port(), rest_port=free_port())
    [f] = ws_exchange(s.urls["function"], [{"function": "iReadCardBas", "iType": 3}])
    [d] = ws_exchange(s.urls["decard"] + "/any/path", [{"func": "iReadCardBas", "in": ["3"]}])
    status, body, _ = raw_get(s.urls["rest"], "/readcard/entry?param=sicard",
                              {"Host": urlsplit(s.urls["rest"]).netloc})
    assert (f["success"], d["result"], status, body["code"]) == (1, "0", 200, 200)


@pytest.mark.parametrize("message, code, function", [
    ("{not json", -14, ""),
    ("[1, 2]", -14, ""),
    ({"function": "iFormatCard", "iType": 3}, -13, "iFormatCard"),
    ({"function": "iReadCardBas"}, -14, "iReadCardBas"),
    ({"function": "iReadCardBas", "iType": "three"}, -14, "iReadCardBas"),
    ({"function": "iReadCardBas", "iType": True}, -14, "iReadCardBas"),
    ({"function": "iReadCardBas", "iType": [3]}, -14, "iReadCardBas"),
    ({"function": "iReadCardBas_HSM_Step2", "pKey": 12}, -14, "iReadCardBas_HSM_Step2"),
    ({"function": 7}, -14, ""),
])
def test_bad_requests_get_an_error_object_and_the_connection_lives_on(
        serve: Any, message: Any, code: int, function: str) -> None:
    s = serve()
    bad, good = ws_exchange(s.url + "/ws/function",
                            [message, {"function": "iReadCardBas", "iType": "3"}])
    assert bad["success"] == code and bad["functionName"] == function
    assert "命令" in bad["pOutInfo"] and "(" in bad["pOutInfo"]
    assert good["success"] == 1


def test_decard_wrong_argument_count_is_an_error_object(serve: Any) -> None:
    s = serve()
    [a, b] = ws_exchange(s.url + "/ws/decard", [{"func": "iReadCardBas", "in": []},
                                               {"func": "iReadCardBas", "in": "3"}])
    assert a["result"] == b["result"] == "-14"


# -- sbcard's own API -------------------------------------------------------------------

def test_own_api_card_health_openapi(serve: Any) -> None:
    s = serve()

    async def go(c: aiohttp.ClientSession) -> tuple[dict, dict, dict]:
        async with c.get(s.url + "/v1/card") as r:
            card = await r.json()
        async with c.get(s.url + "/v1/health") as r:
            health = await r.json()
        async with c.get(s.url + "/v1/openapi.json") as r:
            doc = await r.json()
        return card, health, doc
    card, health, doc = run(go)
    assert card["code"] == 0 and card["card"]["fields"]["name"] == "测试一"
    assert card["card"]["national"] == LINE
    assert card["card"]["labels"]["name"] == {"zh": "姓名", "en": "Name"}
    assert "iReadCardBas" in health["functions"]
    assert doc["openapi"].startswith("3.") and "/v1/pin/change" in doc["paths"]
    assert "image/jpeg" in doc["paths"]["/v1/card/photo"]["get"]["responses"]["200"]["content"]


def test_no_pin_travels_in_a_request_by_default(serve: Any, driver: FakeDriver) -> None:
    s = serve()

    async def go(c: aiohttp.ClientSession) -> tuple[int, dict, int, dict]:
        async with c.post(s.url + "/v1/pin/verify", json={"iType": 3, "pin": "123456"}) as r:
            refused = r.status, await r.json()
        async with c.post(s.url + "/v1/pin/verify", json={"iType": 3}) as r:
            ok = r.status, await r.json()
        return (*refused, *ok)
    status, body, ok_status, ok_body = run(go)
    assert status == 400 and "kiosk" in body["message"]
    assert [c[0] for c in driver.calls] == ["iVerifyPIN"]       # the refused one never ran
    assert ok_status == 200 and ok_body["code"] == 0


def test_hsm_steps_driven_by_the_page(serve: Any) -> None:
    s = serve()

    async def go(c: aiohttp.ClientSession) -> tuple[dict, dict, int]:
        async with c.post(s.url + "/v1/hsm/step1", json={"iType": 3}) as r:
            step1 = await r.json()
        async with c.post(s.url + "/v1/hsm/step2", json={"pKey": "A" * 48}) as r:
            step2 = await r.json()
        async with c.post(s.url + "/v1/hsm/read", json={"iType": 3}) as r:
            bridge = r.status
        return step1, step2, bridge
    step1, step2, bridge_status = run(go)
    assert step1["code"] == 0 and step1["pOutInfo"].startswith("519900|")
    assert step2 == {"code": 0, "message": "成功 (ok)", "pOutInfo": LINE}
    assert bridge_status == 409          # hsm_mode "page": the service does not call an HSM


# -- security ---------------------------------------------------------------------------

def test_bad_host_is_refused(serve: Any) -> None:
    s = serve()
    port = urlsplit(s.url).port
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1:1",
                 f"127.0.0.2:{port}"):
        status, body, _ = raw_get(s.url, "/v1/card", {"Host": host})
        assert (status, body["error"]) == (403, "host_not_allowed"), host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, body, _ = raw_get(s.url, "/v1/health", {"Host": host})
        assert status == 200, host


def test_foreign_origin_is_refused_http_and_websocket(serve: Any, driver: FakeDriver) -> None:
    s = serve()
    host = urlsplit(s.url).netloc
    status, body, headers = raw_get(s.url, "/v1/card", {"Host": host,
                                                        "Origin": "https://evil.example"})
    assert (status, body["error"]) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in headers

    async def upgrade(c: aiohttp.ClientSession) -> int:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await c.ws_connect(s.url + "/ws/function", headers={"Origin": "https://evil.example"})
        return refused.value.status
    assert run(upgrade) == 403
    assert driver.calls == []                       # nothing reached the card


def test_allowed_origin_gets_cors(serve: Any) -> None:
    s = serve()
    host = urlsplit(s.url).netloc
    status, body, headers = raw_get(s.url, "/v1/card", {"Host": host, "Origin": HIS})
    assert status == 200 and body["code"] == 0
    assert headers["Access-Control-Allow-Origin"] == HIS
    [answer] = ws_exchange(s.url + "/ws/function", [{"function": "iReadCardBas", "iType": 3}],
                           origin=HIS)
    assert answer["success"] == 1


def preflight(url: str, origin: str) -> tuple[int, dict[str, str]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("OPTIONS", "/v1/card", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Private-Network": "true"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders())


def test_private_network_access_preflight_only_for_allowed_origins(serve: Any) -> None:
    s = serve()
    status, headers = preflight(s.url, HIS)
    assert status == 204
    assert headers["Access-Control-Allow-Private-Network"] == "true"
    assert headers["Access-Control-Allow-Origin"] == HIS
    status, headers = preflight(s.url, "https://evil.example")
    assert status == 403
    assert "Access-Control-Allow-Private-Network" not in headers
    assert "Access-Control-Allow-Origin" not in headers


def test_oversized_messages_are_refused(serve: Any, driver: FakeDriver) -> None:
    s = serve(max_message_bytes=1024)

    async def go(c: aiohttp.ClientSession) -> tuple[int | None, int]:
        async with c.ws_connect(s.url + "/ws/function") as ws:
            await ws.send_str(json.dumps({"function": "iReadCardBas_HSM_Step2",
                                          "pKey": "A" * 4000}))
            msg = await ws.receive(timeout=10)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            code = ws.close_code
        async with c.post(s.url + "/v1/hsm/step2", data=json.dumps({"pKey": "A" * 4000}),
                          headers={"Content-Type": "application/json"}) as r:
            return code, r.status
    ws_code, http_status = run(go)
    assert ws_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert http_status == 413
    assert driver.calls == []


def test_200_connections_then_the_limit_then_room_again(serve: Any) -> None:
    s = serve(max_connections=200)

    async def go(c: aiohttp.ClientSession) -> tuple[int, int, dict]:
        open_ = [await c.ws_connect(s.url + "/ws/function") for _ in range(200)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as over:
            await c.ws_connect(s.url + "/ws/decard")
        async with c.get(s.url + "/v1/card") as r:      # HTTP still served meanwhile
            card = await r.json()
        for ws in open_:
            await ws.close()
        await until(lambda: s.service.limits.open_websockets == 0, "every socket counted out")
        async with c.ws_connect(s.url + "/ws/function") as ws:   # room again
            await ws.send_str(json.dumps({"function": "iReadCardBas", "iType": 3}))
            again = json.loads(await ws.receive_str(timeout=10))["success"]
        return over.value.status, again, card
    over_status, again, card = run(go)
    assert over_status == 503 and card["code"] == 0 and again == 1


IDLE_S = 0.15         # the idle time under test; the card takes 2.5 times as long


def test_idle_sockets_are_closed_after_the_idle_time_and_busy_ones_kept(
        serve: Any, driver: FakeDriver) -> None:
    """Idle = nothing from the page and nothing owed to it. Silent sockets are closed (1001
    "idle") once the idle time has passed, never before; one whose request is at the card
    for longer than the idle time is kept and gets its answer, and its idle time starts again
    at the answer."""
    import time

    driver.delay_s = 2.5 * IDLE_S
    s = serve(idle_timeout_s=IDLE_S)

    async def go(c: aiohttp.ClientSession) -> tuple[list, Any]:
        async def silent() -> tuple[float, Any]:
            opened = time.perf_counter()      # before the handshake: the service's clock
            ws = await c.ws_connect(s.url + "/ws/function")      # starts after it
            msg = await ws.receive(timeout=10)
            return time.perf_counter() - opened, (msg.type, msg.data, msg.extra)

        async def busy() -> tuple[dict, float, Any]:
            ws = await c.ws_connect(s.url + "/ws/function")
            await ws.send_str(json.dumps({"function": "iReadCardBas", "iType": 3}))
            answer = json.loads(await ws.receive_str(timeout=10))
            msg = await ws.receive(timeout=10)
            return answer, time.perf_counter(), (msg.type, msg.data, msg.extra)

        *quiet, at_card = await asyncio.gather(silent(), silent(), busy())
        await until(lambda: s.service.limits.open_websockets == 0, "every socket counted out")
        return quiet, at_card
    quiet, (answer, closed_at, closed) = run(go)
    idle_close = (aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY, "idle")
    for waited, msg in quiet:
        assert msg == idle_close and waited >= IDLE_S
    [(_, card_start, card_end)] = driver.calls
    assert card_end - card_start >= 2.5 * IDLE_S       # at the card longer than the idle time…
    assert answer["success"] == 1                       # …and kept: it got its answer
    assert closed == idle_close and closed_at - card_end >= IDLE_S


def test_binding_anything_but_loopback_is_refused() -> None:
    with pytest.raises(BadInputError, match=r"only 127\.0\.0\.1"):
        ServiceConfig(bind=("0.0.0.0",))
    with pytest.raises(BadInputError, match="unknown setting"):
        config_from_mapping({"alowed_origins": [HIS]})
    assert config_from_mapping({"allowed_origins": [HIS]}).allowed_origins == (HIS,)
    with pytest.raises(BadInputError, match="idle_timeout_s"):
        config_from_mapping({"idle_timeout_s": 0})


def test_log_masks_pins_keys_and_long_numbers(serve: Any, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    assert masked_mapping({"pin": "123456", "iType": 3}) == "pin=***, iType=3"
    assert "6217001234567890123" not in masked_args(("pCardInfo",), ("6217001234567890123",))
    s = serve()
    with caplog.at_level(logging.INFO, logger="sbcard.service"):
        ws_exchange(s.url + "/ws/function", [{"function": "iReadCardBas_HSM_Step2",
                                              "pKey": "0123456789ABCDEF" * 3}])
    text = caplog.text
    assert "iReadCardBas_HSM_Step2(pKey=***)" in text
    assert "0123456789ABCDEF" not in text and "测试一" not in text


# -- one operation at a time --------------------------------------------------------------

def test_concurrent_clients_never_overlap_and_a_long_wait_is_busy(serve: Any,
                                                                  driver: FakeDriver) -> None:
    driver.delay_s = 0.05
    s = serve(queue_timeout_s=0.3)

    async def go(c: aiohttp.ClientSession) -> list[dict]:
        async def one() -> dict:
            async with c.get(s.url + "/readcard/entry?param=sicard") as r:
                return await r.json()
        return await asyncio.gather(*(one() for _ in range(20)))
    answers = run(go)
    assert driver.overlaps == 0
    ok = [a for a in answers if a["code"] == 200]
    busy = [a for a in answers if a["code"] == 1001]
    assert ok and busy and len(ok) + len(busy) == 20
    assert all(a["message"].startswith("-90:") for a in busy)


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for the service to reach a state (a bounded wait, not a guess at its speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout:g} s")
        await asyncio.sleep(0.01)


def test_a_pin_change_whose_caller_left_while_queued_never_starts(serve: Any,
                                                                  driver: FakeDriver) -> None:
    driver.hold = threading.Event()       # the first change stays at the card until set
    s = serve()

    async def go(c: aiohttp.ClientSession) -> None:
        first = await c.ws_connect(s.url + "/ws/function")
        await first.send_str(json.dumps({"function": "iChangePIN", "iType": 3}))
        await until(lambda: s.service.queue.stats.running == 1, "the first change running")
        second = await c.ws_connect(s.url + "/ws/function")
        await second.send_str(json.dumps({"function": "iChangePIN", "iType": 3}))
        await until(lambda: s.service.queue.stats.waiting == 1,
                    "the second one waiting for the reader")
        await second.close()              # …and its page goes away
        await first.close()               # the first page leaves mid-operation
        assert driver.hold is not None
        driver.hold.set()                 # the card finishes the first change
        await until(lambda: driver.pin_changes == 1 and s.service.queue.idle
                    and s.service.queue.stats.abandoned == 1,
                    "the first change done and the queued one dropped")
    run(go)
    assert driver.pin_changes == 1                  # the running one completed
    assert s.service.queue.stats.abandoned == 1     # the queued one never started
    assert s.service.queue.idle


def test_a_taken_port_is_a_one_line_error(driver: FakeDriver) -> None:
    import socket

    from sbcard.errors import SbcardError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SbcardError, match=f"port {port} \\(rest\\)"):
            ServiceThread(driver, service_config(rest_port=port)).start()


class EventsDriver(FakeDriver):
    """Card events as PC/SC would report them: the PSAM's reader, then the holder's card
    in and out of the counter reader."""

    script = (("PSAM reader", True), ("Counter reader", True), ("Other reader", True),
              ("Counter reader", False))

    def card_events(self, poll: float = 0.5, should_stop: Any = None) -> Iterator[Any]:
        from types import SimpleNamespace

        for reader, present in self.script:
            yield SimpleNamespace(reader=reader, present=present)
        while should_stop is not None and not should_stop():
            import time

            time.sleep(0.05)


def test_card_events_per_reader_without_the_psam() -> None:
    from sbcard.service.core import CardService

    service = CardService(EventsDriver(), service_config(), reader_name="Counter reader",
                          watched_readers=frozenset({"Counter reader"}),
                          ignored_readers=frozenset({"PSAM reader"}))
    s = ServiceThread.around(service).start()
    try:
        async def go(c: aiohttp.ClientSession) -> list[dict]:
            async with c.ws_connect(s.url + "/v1/events") as ws:
                first = json.loads(await ws.receive_str(timeout=5))
                return [first]
        wait_until(lambda: service.events.by_reader.get("Counter reader") is False)
        [state] = run(go)
    finally:
        s.stop()
    assert service.events.by_reader == {"Counter reader": False}   # PSAM and others ignored
    assert state["event"] == "state" and state["present"] is False


def test_kiosk_pins_take_the_cards_lengths_and_ascii_digits_only() -> None:
    from types import SimpleNamespace

    from sbcard.service.api import pins_in
    from sbcard.service.functions import BadRequest

    kiosk: Any = SimpleNamespace(config=SimpleNamespace(kiosk_pin_from_page=True))
    assert pins_in({"pin": "1234567890123456"}, kiosk) == {"pin": "1234567890123456"}
    for bad in ("１２３４５６", "123", "12345678901234567", "12a456"):
        with pytest.raises(BadRequest, match="4 to 16 digits"):
            pins_in({"pin": bad}, kiosk)


def test_photo_and_card_take_itype_from_the_query(serve: Any) -> None:
    s = serve()
    for path in ("/v1/card?iType=5", "/v1/card/photo?iType=%EF%BC%93", "/v1/card?iType=x"):
        _, body, _ = raw_get(s.url, path, {"Host": urlsplit(s.url).netloc})
        assert "iType: 1, 2, 3 or 4" in json.dumps(body, ensure_ascii=False), (path, body)
