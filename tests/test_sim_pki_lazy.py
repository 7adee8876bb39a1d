"""The simulated 3.0 card makes its SM2 key pair and certificate at the first need (issue 13).

Building a 3.0 card installs the PKI application's files and commands only; the key
material (and SM2, X.509, asn1crypto) comes with the first PKI command or access to
EF 0012 / EF 0018, with the values an eagerly built card held (sbcard/sim/pki_app.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sbcard.crypto import sm2
from sbcard.errors import BadInputError
from sbcard.sim import pki, state
from sbcard.sim.persona import load_persona
from tests.test_national_native import sm2_modules_in

ROOT = Path(__file__).resolve().parents[1]

FIRST_COMMAND = textwrap.dedent("""
    import json, sys
    from sbcard.sim.persona import load_persona

    card = load_persona("v3").build_card()
    built = sorted(sys.modules)
    from sbcard.apdu.channel import ApduChannel
    from sbcard.apdu.command import CommandApdu
    from sbcard.card.profiles import load_profile
    from sbcard.ops.sm2auth import read_certificate, select_pki, sign_config
    from sbcard.transport.simulated import SimulatedTransport

    t = SimulatedTransport(card)
    t.connect()
    channel = ApduChannel(t)
    config = sign_config(load_profile("mohrss-3.0"))
    select_pki(channel, config)
    # the first PKI command: export the signature public key (Z390 ReadCard's 80 C9)
    exported = channel.send(CommandApdu.parse(bytes.fromhex("80C9820008C0020012C202001342")))
    cert = read_certificate(channel, config)
    print(json.dumps([built, exported.data.hex(), cert.hex()]))
""")


def test_a_3_0_card_is_built_without_sm2_and_its_first_pki_command_matches_the_cert():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBCARD_")}
    env.update(HOME="/nonexistent", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", FIRST_COMMAND], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    built, exported, cert_hex = json.loads(done.stdout)
    assert "sbcard.sim.pki_app" in built                  # the application is installed ...
    assert sm2_modules_in(built) == []                    # ... its key material is not made
    from sbcard.crypto import x509

    cert = x509.Certificate.from_der(bytes.fromhex(cert_hex))
    public = bytes.fromhex(exported)
    assert public[:2] == b"\x00\x40"
    assert public[2:] == cert.public_key.to_bytes(prefix=False)
    # ... and it is the key an eager derivation from the persona gives
    assert cert.public_key == pki.card_key(load_persona("v3")).public_key


def test_threads_sharing_a_fresh_card_make_its_material_once(monkeypatch):
    made: list[int] = []
    real = pki.card_material
    gate = threading.Event()

    def counted(plan):
        made.append(1)
        gate.wait(0.2)           # hold the first maker while the others arrive
        return real(plan)

    monkeypatch.setattr(pki, "card_material", counted)
    card = load_persona("v3").build_card()
    assert card.pki is not None and made == []
    start = threading.Barrier(8)
    seen: list[tuple[bytes, bytes]] = []

    def first_need(i: int) -> None:
        start.wait()
        st = card.pki
        assert st is not None
        ef = bytes(st.key_ef.data) if i % 2 else st.key.public_key.to_bytes(prefix=False)
        seen.append((ef[-64:], bytes(st.cert_ef.data[:4])))

    threads = [threading.Thread(target=first_need, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert made == [1] and len(seen) == 8 and len(set(seen)) == 1
    assert seen[0][1][:2] == b"\x30\x82"                  # EF 0018 holds the DER certificate


def test_a_key_set_before_the_first_need_is_kept():
    card = load_persona("v3").build_card()
    assert card.pki is not None
    card.pki.key = sm2.PrivateKey(12345)                  # test_sm2auth's "cert without key"
    derived = pki.card_key(load_persona("v3"))
    assert card.pki.key == sm2.PrivateKey(12345)
    assert card.pki.certificate is not None and card.pki.certificate.public_key == \
        derived.public_key
    assert bytes(card.pki.key_ef.data[2:]) == derived.public_key.to_bytes(prefix=False)


def test_a_card_without_key_pair_stays_blank_and_state_capture_sees_the_certificate():
    blank = load_persona("blank3").build_card()
    assert blank.pki is not None and blank.pki.key is None
    assert bytes(blank.pki.key_ef.data) == bytes(66) and not any(blank.pki.cert_ef.data)
    card = load_persona("v3").build_card()
    assert card.pki is not None
    saved = state.capture(card, "v3")                     # --sim-state: EF contents are kept
    adf = saved["dfs"]["53532E434552542E41444631"]["efs"]
    assert adf["0018"]["data"].startswith("3082") and adf["0012"]["data"].startswith("0040")


def test_material_errors_are_still_refused_when_the_persona_loads(tmp_path: Path):
    path = tmp_path / "odd.toml"
    path.write_text('extends = "v3"\nname = "odd"\n[extra.pki]\nnot_before = "2030-01-01"\n'
                    'not_after = "2029-12-31"\n', "utf-8")
    with pytest.raises(BadInputError, match=r"^persona odd: PKI certificate: certificate "
                                            r"notAfter is before notBefore$"):
        load_persona(str(path))
    path.write_text('extends = "v3"\nname = "odd"\n[extra.pki]\nissued = false\n'
                    'not_before = "2030-01-01"\nnot_after = "2029-12-31"\n', "utf-8")
    assert load_persona(str(path)).build_card().pki is not None     # no certificate to make
