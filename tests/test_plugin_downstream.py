"""A sample downstream test module: what a test engineer writes on top of the sbcard plugin.

It uses only the plugin's public fixtures (``sim_card``, ``sim_card_factory``,
``persona_factory``, ``pcscd_card``, ``apdu_log``), the ``sbcard_persona`` marker, and the
public sbcard library (``sbcard.ops``) and command through them. The pcscd tests skip when no
pcscd with vpcd is usable, unless ``--sbcard-require-pcscd`` / ``SBCARD_REQUIRE_PCSCD=1``.

The last section checks the plugin's own options with pytester; downstream projects do not
need that part.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from sbcard.errors import CardRemovedError
from sbcard.ops.pin import Pin, pin_status, select_ssse, verify_pin
from sbcard.ops.read import read_card
from sbcard.testing import ensure_plugin

# Installing sbcard enables the plugin (entry point ``pytest11``); this line only matters
# when that did not happen (a stale install, PYTEST_DISABLE_PLUGIN_AUTOLOAD) and never loads
# it twice.
pytest_plugins = [*ensure_plugin(), "pytester"]

SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00"


# -- in-process card -----------------------------------------------------------------------


def test_sim_card_reads_the_demo_holder(sim_card, apdu_log):
    report = read_card(sim_card.channel).to_json()
    assert report["name"] == "测试一" and report["card_no"] == "A00000011"
    assert sim_card.persona.name == "demo" and report["atr"] == sim_card.atr.hex().upper()
    apdu_log.assert_sent("00A4 04 00 0F 7378312E")               # SELECT SSSE by name
    # EF05 and EF06, all records, each with its exact Le (no 6Cxx, part 5 §6.10.4)
    assert apdu_log.count(ins=0xB2) == 2
    apdu_log.assert_sequence("00A404", "00B2012D40", "00B201355B")
    apdu_log.assert_not_sent(ins=0x20)


@pytest.mark.sbcard_persona("demo", generation="1.0", name="王五", ssn="430100196512300012")
def test_persona_marker_first_generation(sim_card):
    report = read_card(sim_card.channel).to_json()
    assert sim_card.persona.profile.name == "mohrss-1.0"
    assert report["name"] == "王五" and report["ssn"] == "430100196512300012"
    assert report["spec_version"] == "1.00"


@pytest.mark.sbcard_persona("demo", generation="3.0")
def test_third_generation_hides_ef06_without_keys(sim_card, apdu_log):
    report = read_card(sim_card.channel)
    assert report.to_json()["name"] is None                    # EF06 needs RKSSSE
    assert any("RKSSSE" in w for w in report.to_json()["warnings"])
    assert apdu_log.sws[-1] == 0x6982


@pytest.mark.parametrize(
    "sim_card",
    ["v1", "v3", {"base": "demo", "t0": True, "le_zero_6c": True, "multi_record": False}],
    indirect=True,
)
def test_every_card_kind_reads_its_card_number(sim_card, apdu_log):
    report = read_card(sim_card.channel).to_json()
    assert report["card_no"] == sim_card.persona.card["card_no"]
    if sim_card.persona.behaviour.t0_get_response:
        apdu_log.assert_sent("00C0")                             # GET RESPONSE on the wire
        assert apdu_log.count(ins=0xB2, sw=0x6A86) == 2          # no multi-record reads


def test_persona_factory_pin_states(persona_factory, sim_card_factory):
    one_left = sim_card_factory("demo", pin="741852", pin_tries=1)
    select_ssse(one_left.channel)
    assert pin_status(one_left.channel).tries_left == 1
    blocked = sim_card_factory(persona_factory("demo", pin_blocked=True))
    select_ssse(blocked.channel)
    assert pin_status(blocked.channel).blocked
    unset = sim_card_factory("demo", pin=None)
    select_ssse(unset.channel)
    assert not pin_status(unset.channel).pin_set


def test_persona_factory_blocked_application_and_algorithm(sim_card_factory):
    app_blocked = sim_card_factory("demo", application_blocked=True)
    assert app_blocked.transmit(SELECT_SSSE)[-2:] == b"\x93\x03"
    sm4 = sim_card_factory("demo", algorithm="SM4")
    fci = sm4.transmit(SELECT_SSSE)
    assert bytes.fromhex("9F0C03860103") in fci                 # SM4 algorithm id in the FCI


def test_persona_factory_rejects_unknown_keywords(persona_factory):
    with pytest.raises(TypeError, match="unknown keyword 'colour'"):
        persona_factory("demo", colour="red")
    with pytest.raises(ValueError, match="generation"):
        persona_factory("demo", generation="4.0")


def test_verify_pin_never_logs_it_in_clear(sim_card_factory, apdu_log):
    card = sim_card_factory("demo", pin="741852")
    verify_pin(card.channel, Pin("741852"))
    apdu_log.assert_sent("0020000003******")
    apdu_log.assert_no_clear_pin("741852", texts=[apdu_log.format()])
    with pytest.raises(AssertionError, match="in clear"):
        apdu_log.assert_no_clear_pin("741852", texts=["operator typed 741852"])


# -- fault injection, in-process ----------------------------------------------------------


def test_tear_on_read_record_removes_the_card(sim_card, apdu_log):
    fault = sim_card.faults.tear_on(ins=0xB2)
    with pytest.raises(CardRemovedError):
        read_card(sim_card.channel)
    assert fault.fired == 1 and len(apdu_log.torn) == 1
    sim_card.reconnect()                                      # a tear fires once
    assert read_card(sim_card.channel).to_json()["name"] == "测试一"


def test_tear_at_the_third_apdu(sim_card, apdu_log):
    sim_card.faults.tear_at(3)   # SELECT, EF05 (exact Le), then EF06
    with pytest.raises(CardRemovedError):
        read_card(sim_card.channel)
    assert apdu_log.torn == [2] and apdu_log[2].command.startswith("00B20135")


def test_chosen_status_word(sim_card):
    sim_card.faults.answer("6581", "00A404", times=1)
    assert sim_card.transmit(SELECT_SSSE) == b"\x65\x81"
    assert sim_card.transmit(SELECT_SSSE)[-2:] == b"\x90\x00"   # once only


def test_delayed_answer_is_timed_in_the_log(sim_card, apdu_log):
    sim_card.faults.delay(0.05, ins=0xB2, times=1)
    read_card(sim_card.channel)
    first_read = apdu_log.find(ins=0xB2)[0]
    assert first_read.seconds >= 0.05
    assert all(r.seconds < 0.05 for r in apdu_log.find(ins=0xA4))


# -- the card in a real pcscd ---------------------------------------------------------------


def test_pcscd_card_read_by_the_sbcard_command(pcscd_card, apdu_log):
    r = pcscd_card.sbcard("read", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "测试一"
    assert pcscd_card.reader.startswith("Virtual PCD")
    apdu_log.assert_sent(SELECT_SSSE)                         # what the card saw


@pytest.mark.sbcard_persona("demo", name="李四", pin="246810")
def test_pcscd_persona_factory_card_and_pin(pcscd_card, apdu_log):
    r = pcscd_card.sbcard("read", "--json")
    assert json.loads(r.stdout)["name"] == "李四"
    r = pcscd_card.sbcard("verify", "pin", "--pin-stdin", stdin="246810\n")
    assert r.returncode == 0, r.stderr
    apdu_log.assert_sent(ins=0x20, times=2)                   # tries query, then the PIN
    apdu_log.assert_no_clear_pin("246810", texts=[r.stdout, r.stderr])


def test_pcscd_tear_makes_the_reader_see_the_card_removed(pcscd_card):
    pcscd_card.faults.tear_on(ins=0xB2)
    with pytest.raises(CardRemovedError), pcscd_card.session() as channel:
        read_card(channel)
    pcscd_card.wait_reinserted()                              # the card comes back
    r = pcscd_card.sbcard("read", "--json")
    assert r.returncode == 0, r.stderr


def test_pcscd_chosen_status_word(pcscd_card):
    pcscd_card.faults.answer("6A81", "00A404")
    r = pcscd_card.sbcard("apdu", "--expect", "6A81", SELECT_SSSE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<< 6A81" in r.stdout


def test_pcscd_card_removed_and_inserted(pcscd_card):
    pcscd_card.remove()
    r = pcscd_card.sbcard("atr")
    assert r.returncode == 4 and "no card" in r.stderr
    pcscd_card.insert()
    assert pcscd_card.sbcard("atr", "--json").returncode == 0


# -- the plugin's own options (pytester; not needed downstream) ----------------------------

_NEEDS_PCSCD = textwrap.dedent("""
    from sbcard.testing import ensure_plugin

    pytest_plugins = ensure_plugin()

    def test_needs_pcscd(pcscd_card):
        r = pcscd_card.sbcard("read", "--json")
        assert r.returncode == 0, r.stderr
        print("MODE", pcscd_card.service.mode)
""")


def test_require_pcscd_turns_the_skip_into_a_failure(pytester, monkeypatch, tmp_path):
    # Options by environment, so this works whether the plugin came by entry point or not.
    pytester.makepyfile(test_inner=_NEEDS_PCSCD)
    monkeypatch.setenv("PCSCLITE_CSOCK_NAME", str(tmp_path / "nothing.comm"))
    monkeypatch.setenv("SBCARD_PCSCD", "system")
    monkeypatch.delenv("SBCARD_REQUIRE_PCSCD", raising=False)
    skipped = pytester.runpytest_subprocess("-rs")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*no pcscd for hardware-in-the-loop tests*"])
    monkeypatch.setenv("SBCARD_REQUIRE_PCSCD", "1")
    failed = pytester.runpytest_subprocess()
    failed.assert_outcomes(errors=1)
    failed.stdout.fnmatch_lines(["*no pcscd for hardware-in-the-loop tests*"])


def test_isolated_pcscd_mode(pytester, monkeypatch):
    pytester.makepyfile(test_inner=_NEEDS_PCSCD)
    monkeypatch.setenv("SBCARD_PCSCD", "isolated")
    monkeypatch.delenv("SBCARD_REQUIRE_PCSCD", raising=False)
    result = pytester.runpytest_subprocess("-s", "-rs")
    if result.parseoutcomes().get("skipped"):
        pytest.skip("no private pcscd here: " + result.stdout.str().splitlines()[-1])
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*MODE isolated*"])


_XDIST = textwrap.dedent("""
    import json, os, time

    import pytest

    from sbcard.testing import ensure_plugin

    pytest_plugins = ensure_plugin()

    NAMES = ["测试甲", "测试乙", "测试丙", "测试丁"]

    @pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.sbcard_persona(
        "demo", name=n)) for n in NAMES])
    def test_each_worker_reads_its_own_card(pcscd_card, name):
        time.sleep(0.3)                    # hold the card while the other worker serves
        r = pcscd_card.sbcard("read", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["name"] == name
        record = {"worker": os.environ.get("PYTEST_XDIST_WORKER"), "name": name,
                  "mode": pcscd_card.service.mode, "port": pcscd_card.port,
                  "note": pcscd_card.service.note}
        with open(os.environ["XDIST_RECORD"], "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\\n")
""")


#: Seconds the inner run may take in all, and a worker may wait for a busy vpcd slot: a
#: hang fails within minutes, with its output, never after a silent 10 minutes.
INNER_RUN_LIMIT = 300
INNER_SLOT_WAIT = 120


def run_xdist(pytester, monkeypatch, tmp_path, **env: str) -> list[dict]:
    """Run the _XDIST module on two workers; the records the four tests wrote."""
    pytester.makepyfile(test_inner=_XDIST)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("XDIST_RECORD", str(record))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SBCARD_PCSCD", raising=False)
    # The inner run's "machine's pcscd" is the machine's, even when this test itself runs in
    # an xdist worker pointed at a private one.
    monkeypatch.delenv("PCSCLITE_CSOCK_NAME", raising=False)
    monkeypatch.setenv("SBCARD_SLOT_WAIT", str(INNER_SLOT_WAIT))
    try:
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                               timeout=INNER_RUN_LIMIT)
    except pytester.TimeoutExpired:
        tail = (pytester.path / "stdout").read_text("utf-8", errors="replace")[-3000:]
        pytest.fail(f"the inner two-worker run did not end in {INNER_RUN_LIMIT} s "
                    f"(vpcd slot holders now: {machine_slot_holders() or 'none'}); its "
                    f"output:\n{tail}")
    if result.parseoutcomes().get("skipped"):
        pytest.skip("no pcscd here: " + result.stdout.str().splitlines()[-1])
    if "stayed busy" in result.stdout.str():
        holders = machine_slot_holders()
        if holders:                        # someone outside this run kept the slot
            pytest.skip(f"the machine's vpcd slot was held by another process for "
                        f"{INNER_SLOT_WAIT} s: {holders}")
    result.assert_outcomes(passed=4)
    rows = [json.loads(line) for line in record.read_text("utf-8").splitlines()]
    assert sorted(r["name"] for r in rows) == ["测试丁", "测试丙", "测试乙", "测试甲"]
    assert {r["worker"] for r in rows} == {"gw0", "gw1"}
    return rows


def test_xdist_workers_serve_cards_side_by_side(pytester, monkeypatch, tmp_path):
    rows = run_xdist(pytester, monkeypatch, tmp_path)
    modes = {r["mode"] for r in rows}
    if modes == {"isolated"}:
        # Each worker has its own private pcscd on its own vpcd ports.
        ports = {r["worker"]: r["port"] for r in rows}
        assert len(set(ports.values())) == 2
    else:
        # No private pcscd here: the workers shared the machine's, taking turns at the slot
        # (the slot lock), and each says why.
        assert modes == {"system"}
        assert all("no private pcscd for xdist worker" in r["note"] for r in rows)


def machine_slot_holders() -> list[tuple[int, str]]:
    """Who holds the lock of the machine's vpcd card slot now (pid, command line)."""
    from sbcard.testing.pcscd import CARD_SLOT, slot_holders, system_vpcd_port

    return slot_holders(system_vpcd_port() + CARD_SLOT)


def wait_for_machine_slot(limit: float = 60.0) -> None:
    """Skip, naming the holder, when a process outside this run keeps the machine's vpcd
    card slot (another test run on a shared machine) for ``limit`` seconds."""
    from sbcard.testing.pcscd import CARD_SLOT, slot_lock, system_vpcd_port

    try:
        with slot_lock(system_vpcd_port() + CARD_SLOT, timeout=limit):
            pass
    except TimeoutError as exc:
        pytest.skip(f"the machine's vpcd slot is held outside this test run: {exc}")


def test_xdist_workers_without_private_pcscd_take_turns(pytester, monkeypatch, tmp_path):
    # No `unshare` on PATH: no private pcscd, so both workers serve into the machine's
    # pcscd, one card at a time (slot_lock); each card is still read as its own.
    wait_for_machine_slot()
    bare = tmp_path / "bin"
    bare.mkdir()
    rows = run_xdist(pytester, monkeypatch, tmp_path, PATH=str(bare))
    assert {r["mode"] for r in rows} == {"system"}
    assert all("unshare" in r["note"] for r in rows)


def test_slot_lock_makes_a_second_process_wait(tmp_path):
    import os
    import subprocess
    import sys

    from sbcard.testing.pcscd import slot_lock

    port = 49000 + (tmp_path.stat().st_ino % 1000)     # a slot no real test uses
    probe = ("import sys; from sbcard.testing.pcscd import slot_lock\n"
             "try:\n"
             f"    with slot_lock({port}, timeout=0.3): print('got it')\n"
             "except TimeoutError as exc: print(exc); sys.exit(3)\n")

    def other_process() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              timeout=30)

    heard: list[str] = []
    with slot_lock(port, on_wait=heard.append):
        busy = other_process()
    assert busy.returncode == 3 and f"vpcd port {port} stayed busy" in busy.stdout
    assert f"pid {os.getpid()}: " in busy.stdout           # the message names the holder
    assert heard == []                                  # we never had to wait
    free = other_process()
    assert free.returncode == 0 and "got it" in free.stdout


def test_slot_wait_comes_from_the_environment():
    from sbcard.testing.pcscd import slot_wait_default

    assert slot_wait_default({}) == 600.0
    assert slot_wait_default({"SBCARD_SLOT_WAIT": "45"}) == 45.0
    with pytest.raises(ValueError, match="SBCARD_SLOT_WAIT='soon'"):
        slot_wait_default({"SBCARD_SLOT_WAIT": "soon"})


# -- record in-process, replay wherever a persona is accepted -------------------------------

_RECORD_REPLAY = textwrap.dedent("""
    import pytest

    from sbcard.ops.read import read_card
    from sbcard.testing import ensure_plugin

    pytest_plugins = ensure_plugin()

    def test_record(sim_card, tmp_path_factory):
        # an in-process recorder: the session goes to a dump, no subprocess
        with sim_card.recording("read.dump", redact_holder=False) as channel:   # synthetic
            assert read_card(channel).to_json()["name"] == "测试一"

    @pytest.mark.sbcard_persona("read.dump")
    def test_replay_by_marker(sim_card, apdu_log):
        assert sim_card.persona is None and sim_card.faults is None
        assert read_card(sim_card.channel).to_json()["name"] == "测试一"
        assert sim_card.card.misses == [] and apdu_log.count(ins=0xB2) == 2

    @pytest.mark.parametrize("sim_card", ["read.dump"], indirect=True)
    def test_replay_by_parameter(sim_card):
        assert read_card(sim_card.channel).to_json()["card_no"] == "A00000011"

    def test_replay_by_factory(sim_card_factory):
        card = sim_card_factory("read.dump")
        assert read_card(card.channel).to_json()["card_no"] == "A00000011"
""")


def test_a_dump_file_wherever_a_persona_goes(pytester):
    pytester.makepyfile(test_inner=_RECORD_REPLAY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    dump = (pytester.path / "read.dump").read_text("utf-8")
    assert dump.startswith("# sbcard-dump 1") and ">> 00A40400" in dump


def test_the_guide_record_and_replay_examples_run_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parents[1] / "docs" / "test-engineers.md"
    section = guide.read_text("utf-8").split("### Replaying", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    for i, block in enumerate(blocks):
        exec(compile(block, f"test-engineers.md replay example {i + 1}", "exec"), {})
    assert (tmp_path / "read.dump").is_file()
