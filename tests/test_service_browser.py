"""The counter page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by .ci/setup) driven by selenium, against ``sbcard serve`` on
the simulated card in pcscd, so the card can be pulled and put back."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium not installed (apt-get install chromium chromium-driver; "
           ".ci/setup does it)")


def tiny_bmp() -> bytes:
    """A 2×2 24-bit BMP (synthetic colours, no one's photo): small enough for EF08 and
    decodable, so the page's <img> gets a real naturalWidth."""
    row = bytes.fromhex("204080c0a060") + b"\0\0"          # 2 pixels, padded to 4 bytes
    pixels = row * 2
    return (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
            + pixels)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(browser: Any, condition: Any, timeout: float = 20.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)


def text_of(browser: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.ID, element_id).text)


@pytest.mark.sbcard_persona("demo", files={"EF08": tiny_bmp().hex()})
def test_counter_page_reads_the_card_and_follows_its_removal(browser: Any,
                                                             pcscd_card: Any) -> None:
    from selenium.webdriver.common.by import By

    from sbcard.service.run import build_service, sim_driver_config
    from sbcard.testing.service import ServiceThread, service_config

    pcscd_card._need_in_process()
    driver_config = replace(sim_driver_config("demo"), sim=None,
                            contact_reader=pcscd_card.reader)
    service = build_service(service_config(events_poll_s=0.1), driver_config)
    s = ServiceThread.around(service).start()
    try:
        browser.get(s.url + "/")
        # The card is in the reader: the page reads it by itself and shows the holder.
        wait_for(browser, lambda b: text_of(b, "name") == "测试一")
        assert "社会保障号码" in text_of(browser, "fields")       # Chinese label…
        assert "Social security number" in text_of(browser, "fields")   # …English beside it
        assert text_of(browser, "national").split("|")[4] == "测试一"
        # The photo (EF08, RKSSSE from the simulated PSAM) is shown and decoded.
        wait_for(browser, lambda b: b.execute_script(
            "const i = document.getElementById('photo');"
            "return !i.hidden && i.complete && i.naturalWidth") == 2)
        pcscd_card.remove()
        wait_for(browser, lambda b: not b.find_element(By.ID, "card").is_displayed())
        assert "卡已拔出" in text_of(browser, "message")
        assert browser.find_element(By.ID, "photo").get_attribute("src") is None
        assert browser.find_element(By.ID, "status").get_attribute("data-state") == "absent"
        pcscd_card.insert()
        wait_for(browser, lambda b: text_of(b, "name") == "测试一")
        # The read button reads on demand, and the page loaded nothing from elsewhere.
        browser.find_element(By.ID, "read").click()
        wait_for(browser, lambda b: "读卡成功" in text_of(b, "message"))
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert urls and all(u.startswith(s.url) or u.startswith(s.url.replace("http", "ws"))
                            for u in urls)
    finally:
        s.stop()
        service.driver.close()


def test_counter_page_verifies_the_pin_through_the_pin_source(browser: Any) -> None:
    """The page asks; the PIN comes from the driver's PIN source (here a fixed one standing
    in for the PIN pad), never from the page."""
    from selenium.webdriver.common.by import By

    from sbcard.service.run import build_service, sim_driver_config
    from sbcard.testing.service import ServiceThread

    driver_config = replace(sim_driver_config("demo"), pin_source="fixed", fixed_pin="123456")
    service = build_service(service_config_for_page(), driver_config)
    s = ServiceThread.around(service).start()
    try:
        browser.get(s.url + "/")
        wait_for(browser, lambda b: text_of(b, "name") == "测试一")
        assert not browser.find_element(By.ID, "kiosk").is_displayed()   # no PIN fields
        wait_for(browser, lambda b: text_of(b, "photo-note") == "无照片 No photo")  # demo has none
        assert not browser.find_element(By.ID, "photo").is_displayed()
        browser.find_element(By.ID, "verify").click()
        wait_for(browser, lambda b: "密码正确" in text_of(b, "message"))
    finally:
        s.stop()
        service.driver.close()


def service_config_for_page() -> Any:
    from sbcard.testing.service import service_config

    return service_config(events_poll_s=0.1)
