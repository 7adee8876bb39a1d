"""``sbcard serve`` end to end: the real ``SSCardDriver`` on the simulated card and PSAM,
in-process (the ``sbcard_service`` fixture of the pytest plugin) and through pcscd."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from sbcard.national.codes import HSM_FALLBACK
from sbcard.national.lines import split_fields
from sbcard.service.config import ServiceConfig
from sbcard.service.run import build_service, sim_driver_config
from sbcard.testing.service import ServiceThread, service_config
from tests.national_hsm import read_step_key

NAME = "测试一"          # the demo persona's holder (synthetic)


def run(coro: Any) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            return await coro(session)
    return asyncio.run(main())


def ws_call(url: str, *messages: dict) -> list[dict]:
    async def go(c: aiohttp.ClientSession) -> list[dict]:
        async with c.ws_connect(url) as ws:
            out = []
            for m in messages:
                await ws.send_str(json.dumps(m))
                out.append(json.loads(await ws.receive_str(timeout=20)))
            return out
    return run(go)


def get_json(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    async def go(c: aiohttp.ClientSession) -> tuple[int, dict]:
        async with c.request(method, url, json=body) as r:
            return r.status, await r.json()
    return run(go)


def test_three_dialects_and_own_api_read_the_simulated_card(sbcard_service: str) -> None:
    [f] = ws_call(sbcard_service + "/ws/function", {"function": "iReadCardBas", "iType": 3})
    [d] = ws_call(sbcard_service + "/ws/decard", {"func": "iReadCardBas", "in": ["3"]})
    _, rest = get_json(sbcard_service + "/readcard/entry?param=sicard")
    _, card = get_json(sbcard_service + "/v1/card")
    assert f["success"] == 1 and split_fields(f["pOutInfo"])[4] == NAME
    assert d["result"] == "0" and d["out"] == [f["pOutInfo"]]
    assert rest["code"] == 200 and rest["data"] == f["pOutInfo"]
    assert card["card"]["fields"]["name"] == NAME
    assert card["card"]["fields"]["ssn"] == split_fields(f["pOutInfo"])[1]
    assert card["card"]["national"] == f["pOutInfo"]


@pytest.mark.sbcard_service(psam=None)
def test_no_psam_then_the_page_runs_the_hsm_steps(sbcard_service: str) -> None:
    """What the function-style page does (readCardBasProMsg): −2201 → Step1 → its server's
    HSM → Step2 with the answer."""
    url = sbcard_service + "/ws/function"
    [first, step1] = ws_call(url, {"function": "iReadCardBas", "iType": 3},
                             {"function": "iReadCardBas_HSM_Step1", "iType": 3})
    assert first["success"] == -2201 and first["success"] in HSM_FALLBACK
    assert step1["success"] == 1
    pkey = read_step_key(step1["pOutInfo"])          # the hospital server's HSM
    [step2] = ws_call(url, {"function": "iReadCardBas_HSM_Step2", "pKey": pkey})
    assert step2["success"] == 1 and split_fields(step2["pOutInfo"])[4] == NAME
    status, own = get_json(sbcard_service + "/v1/hsm/step1", "POST", {"iType": 3})
    assert status == 200 and own["code"] == 0
    status, own2 = get_json(sbcard_service + "/v1/hsm/step2", "POST",
                            {"pKey": read_step_key(own["pOutInfo"])})
    assert own2["pOutInfo"] == step2["pOutInfo"]


@pytest.mark.sbcard_persona("v3")
@pytest.mark.sbcard_service(psam="nork")
def test_psam_without_rkssse_is_2203_for_the_page(sbcard_service: str) -> None:
    [f] = ws_call(sbcard_service + "/ws/function", {"function": "iReadCardBas", "iType": 3})
    assert f["success"] == -2203


@pytest.mark.sbcard_persona("pinblocked")
def test_pin_locked_card(sbcard_service: str) -> None:
    status, body = get_json(sbcard_service + "/v1/pin/verify", "POST", {"iType": 3})
    assert status == 200 and body["code"] == -52


@pytest.mark.sbcard_persona("pulled")
def test_card_pulled_mid_read(sbcard_service: str) -> None:
    [d] = ws_call(sbcard_service + "/ws/decard", {"func": "iReadCardBas", "in": ["3"]})
    assert d["result"] == "-4"


def test_hsm_bridge_mode_runs_both_steps_in_the_service(tmp_path: Any) -> None:
    hsm = f"{sys.executable} -m tests.national_hsm"
    driver_config = replace(sim_driver_config("v3"), key_source="hsm", hsm_command=hsm)
    service = build_service(service_config(hsm_mode="bridge"), driver_config)
    with ServiceThread.around(service) as s:
        status, body = get_json(s.url + "/v1/hsm/read", "POST", {"iType": 3})
    service.driver.close()
    assert status == 200 and body["code"] == 0
    assert split_fields(body["pOutInfo"])[4] == "买买提·测试"


def kiosk_service() -> ServiceThread:
    service = build_service(service_config(kiosk_pin_from_page=True),
                            sim_driver_config("demo"))
    return ServiceThread.around(service).start()


def test_kiosk_mode_takes_the_pin_from_the_page_for_one_operation(
        caplog: pytest.LogCaptureFixture) -> None:
    s = kiosk_service()
    try:
        with caplog.at_level("INFO", logger="sbcard.service"):
            wrong = get_json(s.url + "/v1/pin/verify", "POST", {"pin": "999999"})[1]
            right = get_json(s.url + "/v1/pin/verify", "POST", {"pin": "123456"})[1]
            none = get_json(s.url + "/v1/pin/verify", "POST", {})[1]
            change = get_json(s.url + "/v1/pin/change", "POST",
                              {"oldPin": "123456", "newPin": "654321"})[1]
            new = get_json(s.url + "/v1/pin/verify", "POST", {"pin": "654321"})[1]
    finally:
        s.stop()
        s.service.driver.close()
    assert wrong["code"] == -51 and "2" in wrong["message"]
    assert right["code"] == 0
    assert none["code"] == -31            # no PIN left over from the previous request
    assert change["code"] == 0 and new["code"] == 0
    for pin in ("999999", "123456", "654321"):
        assert pin not in caplog.text


def test_service_config_defaults_are_the_vendor_ports() -> None:
    c = ServiceConfig()
    assert (c.function_port, c.decard_port, c.rest_port) == (12342, 50150, 8321)
    assert c.bind == ("127.0.0.1",) and not c.kiosk_pin_from_page


# -- through pcscd --------------------------------------------------------------------------

def test_through_pcscd_read_and_card_events(pcscd_card: Any) -> None:
    pcscd_card._need_in_process()
    driver_config = replace(sim_driver_config("demo"), sim=None,
                            contact_reader=pcscd_card.reader)
    service = build_service(service_config(events_poll_s=0.1), driver_config)
    s = ServiceThread.around(service).start()
    try:
        async def go(c: aiohttp.ClientSession) -> tuple[dict, dict, list[dict]]:
            async with c.ws_connect(s.url + "/v1/events") as events:
                state = json.loads(await events.receive_str(timeout=10))
                async with c.ws_connect(s.url + "/ws/function") as ws:
                    await ws.send_str(json.dumps({"function": "iReadCardBas", "iType": 1}))
                    read = json.loads(await ws.receive_str(timeout=30))
                await asyncio.get_running_loop().run_in_executor(None, pcscd_card.remove)
                seen = []
                while not any(e.get("event") == "removed" for e in seen):
                    seen.append(json.loads(await events.receive_str(timeout=15)))
                return state, read, seen
        state, read, seen = run(go)
    finally:
        s.stop()
        service.driver.close()
    assert state["event"] == "state"
    assert read["success"] == 1 and split_fields(read["pOutInfo"])[4] == NAME
    assert seen[-1]["event"] == "removed" and seen[-1]["present"] is False


def test_sbcard_serve_command_runs_until_sigterm() -> None:
    import signal
    import subprocess
    import time
    import urllib.request

    from sbcard.testing.service import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbcard", "serve", "--sim", "demo", "--port", str(port),
         "--function-port", "0", "--decard-port", "0", "--rest-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/readcard/entry?param=sicard", timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert body["code"] == 200 and split_fields(body["data"])[4] == NAME
    assert proc.returncode == 0 and f"http://127.0.0.1:{port}" in err
    assert "Traceback" not in err


def get_raw(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    async def go(c: aiohttp.ClientSession) -> tuple[int, str, bytes]:
        async with c.get(url, headers=headers or {}) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.read()
    return run(go)


@pytest.mark.sbcard_persona("v3")
def test_photo_endpoint_serves_the_personas_image(sbcard_service: str) -> None:
    """3.0 card, simulated PSAM with RKSSSE: the image bytes of EF08 as image/jpeg."""
    from tests.test_national import persona_photo

    status, content_type, body = get_raw(sbcard_service + "/v1/card/photo")
    assert status == 200 and content_type == "image/jpeg"
    assert body == persona_photo("v3")
    status, _, _ = get_raw(sbcard_service + "/v1/card/photo",
                           {"Origin": "https://evil.example"})
    assert status == 403                                   # same Origin rule as the rest


@pytest.mark.sbcard_persona("v3")
@pytest.mark.sbcard_service(psam=None)
def test_photo_endpoint_without_a_key_source_is_an_error_object(sbcard_service: str) -> None:
    status, content_type, body = get_raw(sbcard_service + "/v1/card/photo")
    answer = json.loads(body)
    assert status == 200                           # a card outcome, as on every /v1 call
    assert content_type.startswith("application/json") and answer["code"] == -2201
    assert "photo needs a key source" in answer["message"]


def test_photo_endpoint_on_a_card_without_a_photo(sbcard_service: str) -> None:
    _, content_type, body = get_raw(sbcard_service + "/v1/card/photo")
    assert content_type.startswith("application/json")
    assert json.loads(body)["code"] == -27266
    status, _ = get_json(sbcard_service + "/v1/card/photo?iType=9")
    assert status == 400
