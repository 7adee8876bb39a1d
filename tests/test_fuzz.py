"""Seeded, time-bounded fuzzing (issue 10, Tests): random APDUs into every persona's card OS
and every PSAM persona, mutated personas, dumps, key files and CSVs. Each input ends in a valid
status word or a clean one-line sbcard error, never another exception.

SBCARD_FUZZ_SEED picks the seed (default fixed, so CI is reproducible); SBCARD_FUZZ_SECONDS
bounds each part (default 1 s). A failure prints the seed and the input that broke.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import time
import tomllib
from collections.abc import Callable, Iterator
from importlib import resources

import pytest

from sbcard.errors import SbcardError
from sbcard.transport.base import CardTornError

SEED = int(os.environ.get("SBCARD_FUZZ_SEED", "20261202"))
SECONDS = float(os.environ.get("SBCARD_FUZZ_SECONDS", "1.0"))
MAX_ROUNDS = 3000


def rounds(seed_offset: int) -> Iterator[tuple[int, random.Random]]:
    """(round, rng) until the time or round budget is spent."""
    rng = random.Random(SEED + seed_offset)
    end = time.monotonic() + SECONDS
    for n in range(MAX_ROUNDS):
        if time.monotonic() > end:
            return
        yield n, rng


def one_line_error(exc: SbcardError) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text


def valid_reply(reply: bytes) -> None:
    assert isinstance(reply, bytes) and len(reply) >= 2
    assert 0x60 <= reply[-2] <= 0x9F, reply.hex()


# -- random APDUs -----------------------------------------------------------------------------

INS_POOL = [0xA4, 0xB0, 0xB2, 0xD6, 0xDC, 0x20, 0x24, 0x2C, 0x5E, 0x82, 0x84, 0x88, 0xC0,
            0xCA, 0x1E, 0x16, 0x44, 0xFA, 0xDE, 0x1A, 0xC6, 0xF8, 0x00, 0xFF]


def random_apdu(rng: random.Random) -> bytes:
    cla = rng.choice([0x00, 0x04, 0x80, 0x84, 0xBF, 0x0C, rng.randrange(256)])
    ins = rng.choice(INS_POOL) if rng.random() < 0.9 else rng.randrange(256)
    head = bytes((cla, ins, rng.randrange(256), rng.randrange(256)))
    shape = rng.randrange(5)
    if shape == 0:
        return head
    if shape == 1:
        return head + bytes((rng.choice([0, 4, 8, 16, rng.randrange(256)]),))
    data = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 8, 12, 16, 17, 24])))
    body = head + bytes((len(data),)) + data
    if shape == 3:
        body += bytes((rng.randrange(256),))
    if shape == 4:
        body = body[:-1]                                  # Lc disagrees with the data
    return body


def _personas() -> list[str]:
    from sbcard.sim.persona import builtin_personas

    return builtin_personas()


def _psam_personas() -> list[str]:
    from sbcard.sim.psam import builtin_psam_personas

    return builtin_psam_personas()


def _drive(card, rng: random.Random, count: int) -> None:
    card.power_on()
    # a valid start now and then, so the deeper handlers (after SELECT, a challenge) are hit
    prefix = [bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"), bytes.fromhex(
        "0084000008"), bytes.fromhex("0084000010")]
    for _ in range(count):
        apdu = rng.choice(prefix) if rng.random() < 0.25 else random_apdu(rng)
        try:
            reply = card.process(apdu)
        except CardTornError:          # a persona with fault injection tears on purpose
            card.power_on()
            continue
        except Exception as exc:       # the card must answer, never raise
            pytest.fail(f"seed {SEED}: {apdu.hex().upper()} raised {exc!r}")
        valid_reply(reply)


@pytest.mark.parametrize("persona", _personas())
def test_random_apdus_into_every_persona(persona):
    from sbcard.sim.persona import load_persona

    for n, rng in rounds(hash(persona) % 1000):
        _drive(load_persona(persona).build_card(), rng, 40)
        if n > 30:
            break


@pytest.mark.parametrize("persona", _psam_personas())
def test_random_apdus_into_every_psam(persona):
    from sbcard.sim.psam import load_psam_persona

    for n, rng in rounds(500 + hash(persona) % 1000):
        _drive(load_psam_persona(persona).build(), rng, 40)
        if n > 30:
            break


def test_des_card_16_byte_challenge_then_mac_answers():
    """The crash the fuzzer found: a DES card, GET CHALLENGE 16, then a MAC command."""
    from sbcard.sim.persona import load_persona

    card = load_persona("demo").build_card()
    card.power_on()
    card.process(bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"))
    assert card.process(bytes.fromhex("0084000010"))[-2:] == bytes.fromhex("9000")
    reply = card.process(bytes.fromhex("04DC01340C0806313233343536AABBCCDD"))
    assert reply == bytes.fromhex("6985")


def test_an_exception_inside_the_card_os_becomes_6f00_and_is_logged(caplog):
    from sbcard.sim.persona import load_persona

    card = load_persona("demo").build_card()
    card.power_on()

    def broken(_card, cmd):
        raise ZeroDivisionError("bug")

    card.handlers[0xB2] = broken
    with caplog.at_level("ERROR"):
        assert card.process(bytes.fromhex("00B2010C00")) == bytes.fromhex("6F00")
    assert "6F00" in caplog.text


# -- mutated inputs ---------------------------------------------------------------------------

ODD_VALUES: list[object] = [-1, 0, 20, 2**70, 5, "", "x" * 300, "１２３４５６", "\n", None, [],
                            {}, True, 1.5, "FFFF", "6F*9000", "=cmd"]


def mutate_mapping(data: dict, rng: random.Random) -> dict:
    out = copy.deepcopy(data)
    for _ in range(rng.randrange(1, 4)):
        node = out
        path = []
        while isinstance(node, dict) and node:
            key = rng.choice(list(node))
            path.append(key)
            if isinstance(node[key], dict) and rng.random() < 0.7:
                node = node[key]
                continue
            node[key] = rng.choice(ODD_VALUES)
            break
    return out


def _check(fn: Callable[[], object], what: str) -> None:
    try:
        fn()
    except SbcardError as exc:
        one_line_error(exc)
    except Exception as exc:
        pytest.fail(f"seed {SEED}: {what} raised {exc!r}")


def test_mutated_personas():
    from sbcard.sim.persona import persona_from_mapping

    base = tomllib.loads(resources.files("sbcard.sim").joinpath("personas", "demo.toml")
                         .read_text("utf-8"))
    for n, rng in rounds(7):
        data = mutate_mapping(base, rng)

        def build(data=data):
            card = persona_from_mapping(data, "mutant").build_card()
            card.power_on()
            for hex_apdu in ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "00B2010C00",
                             "0020000003123456", "00B2083400"):
                valid_reply(card.process(bytes.fromhex(hex_apdu)))

        _check(build, f"persona mutation {n}: {data}")


def _dump_text() -> str:
    import tempfile
    from pathlib import Path

    from sbcard.sim.persona import load_persona
    from sbcard.testing.cards import SimulatedCard

    with tempfile.TemporaryDirectory() as d:
        card = SimulatedCard(load_persona("demo"))
        path = Path(d) / "x.dump"
        with card.recording(path) as ch:
            from sbcard.ops.read import read_card

            read_card(ch)
        return path.read_text("utf-8")


def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(lines))
        line = lines[i]
        choice = rng.randrange(6)
        if choice == 0:
            lines[i] = line[:rng.randrange(len(line) + 1)]
        elif choice == 1 and line:
            pos = rng.randrange(len(line))
            lines[i] = line[:pos] + rng.choice("*0G9 ()\t=#é") + line[pos + 1:]
        elif choice == 2:
            del lines[i]
            if not lines:
                lines = [""]
        elif choice == 3:
            lines.insert(i, rng.choice(["<< 6F*9000  (3 B, 0.1 ms)", ">> 00  (1 B)", "<< ",
                                        ">> ZZ (2 B)", "# sbcard-dump 9"]))
        elif choice == 4:
            lines[i] = line.replace("B)", "99999 B)")
        else:
            lines[i] = line * 2
    return "\n".join(lines) + "\n"


def test_mutated_dumps():
    from sbcard.sim.replay import ReplayCard

    text = _dump_text()
    for n, rng in rounds(11):
        mutant = mutate_text(text, rng)

        def serve(mutant=mutant):
            card = ReplayCard.from_text(mutant)
            card.power_on()
            for hex_apdu in ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "00B2010C00"):
                # a replay may refuse a command it has not recorded (an SbcardError)
                with contextlib.suppress(SbcardError):
                    valid_reply(card.process(bytes.fromhex(hex_apdu)))

        _check(serve, f"dump mutation {n}")


def test_mutated_key_files():
    from sbcard.keys.keyfile import KeyFile

    base = tomllib.loads(resources.files("sbcard.keys").joinpath("material", "test-keys.toml")
                         .read_text("utf-8"))
    for n, rng in rounds(13):
        data = copy.deepcopy(base)
        if rng.random() < 0.3:
            data["key"] = rng.choice(ODD_VALUES)
        elif data.get("key"):
            entry = rng.choice(data["key"])
            key = rng.choice(list(entry))
            entry[key] = rng.choice(ODD_VALUES)
            if rng.random() < 0.2:
                data["key"].append(copy.deepcopy(data["key"][0]))     # a duplicate key
        _check(lambda data=data: KeyFile.from_mapping(data, "mutant"), f"key file {n}: {data}")


def test_duplicate_card_key_id_is_refused():
    from sbcard.keys.keyfile import KeyFile

    base = tomllib.loads(resources.files("sbcard.keys").joinpath("material", "test-keys.toml")
                         .read_text("utf-8"))
    base["key"].append(copy.deepcopy(base["key"][0]))
    with pytest.raises(SbcardError, match="is also"):
        KeyFile.from_mapping(base, "dup")
    with pytest.raises(SbcardError, match="must be"):
        KeyFile.from_mapping({"key": 5}, "five")


def test_mutated_csvs(tmp_path):
    from sbcard.ops.holders import CsvInvalid, load_holders
    from tests.holders_factory import holder_rows, write_csv

    good = write_csv(tmp_path / "good.csv", holder_rows(4)).read_text("utf-8")
    for n, rng in rounds(17):
        path = tmp_path / f"m{n % 5}.csv"
        path.write_text(mutate_text(good, rng), encoding="utf-8")

        def load(path=path):
            try:
                load_holders(path)
            except CsvInvalid as exc:       # one line per problem, each short
                assert exc.problems
                assert all("\n" not in p and len(p) <= 200 for p in exc.problems)

        _check(load, f"csv mutation {n}: {path.read_text('utf-8')!r}")


@pytest.mark.parametrize("line", ["<< 6F*9000  (3 B, 0.1 ms)", "<< 6F  (1 B, 0.1 ms)",
                                  "<< 6F00**  (3 B, 0.1 ms)", "<< 9000  (3 B, 0.1 ms)"])
def test_bad_dump_responses_are_refused_at_load(line):
    from sbcard.apdu.dump import parse_dump

    text = _dump_text().splitlines()
    first_rsp = next(i for i, t in enumerate(text) if t.startswith("<<"))
    text[first_rsp] = line
    with pytest.raises(SbcardError) as err:
        parse_dump("\n".join(text) + "\n", "bad.dump")
    one_line_error(err.value)
    assert "bad.dump:" in str(err.value)
