"""SM2 card authentication (3.0 cards): X.509 for SM2, the simulated PKI application, the
flow in ``sbcard.ops.sm2auth`` and ``sbcard verify card --sm2``."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.sw import CardError
from sbcard.card.profiles import load_profile
from sbcard.card.profiles.sections import DEFAULT_USER_ID
from sbcard.compose import SessionOptions, stack
from sbcard.crypto import sm2, x509
from sbcard.errors import BadInputError, MismatchError
from sbcard.keys.builtin_ca import test_root_pem as shipped_root_pem
from sbcard.ops.sm2auth import (
    Sm2AuthConfig,
    load_trust_roots,
    sm2_authenticate,
)
from sbcard.sim import pki
from sbcard.sim.persona import load_persona
from sbcard.transport.simulated import SimulatedTransport
from tests.cli_runner import run_cli

PROFILE = load_profile("mohrss-3.0")
ROOTS = load_trust_roots("test")
NOW = datetime(2025, 6, 1, tzinfo=UTC)
OPENSSL = shutil.which("openssl")
DISTID = "distid:1234567812345678"


def v3_card(persona: str = "v3", **behaviour):
    p = load_persona(persona)
    for k, v in behaviour.items():
        setattr(p.behaviour, k, v)
    return p.build_card()


def channel_for(card, records: list | None = None) -> ApduChannel:
    options = SessionOptions(on_record=records.append if records is not None else None)
    transport = stack(SimulatedTransport(card, "sim"), options)
    transport.connect()
    return ApduChannel(transport)


def authenticate(card, **kw):
    return sm2_authenticate(channel_for(card), PROFILE, ROOTS, now=kw.pop("now", NOW), **kw)


def other_root(cn: str | None = None):
    key = sm2.PrivateKey(0x5EED)
    if cn is None:                       # same name as the TEST root, different key
        return pki.make_test_root(key)
    name = x509.Name.build(c="CN", o="Some Other CA", cn=cn)
    cert = x509.build_certificate(subject=name, public_key=key.public_key, issuer=name,
                                  issuer_key=key, serial=7, not_before=date(2020, 1, 1),
                                  not_after=date(2049, 1, 1), ca=True)
    return key, cert


def reissue(card, ca_key, ca_cert, **dates) -> x509.Certificate:
    st = card.pki
    cert = pki.issue_card_certificate(
        st.key.public_key, card_no="C0000018X", region="519900", serial=99,
        not_before=dates.get("not_before", date(2023, 3, 15)),
        not_after=dates.get("not_after", date(2033, 3, 15)), ca_key=ca_key, ca_cert=ca_cert)
    st.set_certificate(cert.der)
    return cert


# --------------------------------------------------------------------------- the flow


def test_genuine_card_passes_and_reports_the_certificate():
    result = authenticate(v3_card())
    assert result.certificate.subject.common_name == "TEST card C0000018X"
    assert result.root.der == ROOTS[0].der
    assert result.serial == result.certificate.serial_hex and len(result.challenge) == 32
    data = result.to_json()
    assert data["not_after"].startswith("2033-03-15") and "Root CA" in data["issuer"]


def test_card_key_and_certificate_are_stable_per_persona():
    a, b = v3_card().pki, v3_card().pki
    assert a.key == b.key and a.certificate.der == b.certificate.der
    other = v3_card("blank3").pki
    assert other.key != a.key


def test_certificate_from_another_ca_is_untrusted():
    card = v3_card()
    reissue(card, *other_root("Other Root"))
    with pytest.raises(x509.UntrustedCertificateError, match="not in the trust store") as exc:
        authenticate(card)
    assert isinstance(exc.value, MismatchError) and exc.value.exit_code == 9


def test_certificate_forged_under_the_test_root_name_fails_signature_check():
    card = v3_card()
    reissue(card, *other_root())                      # same issuer name, other key
    with pytest.raises(x509.CertificateSignatureError, match="does not verify"):
        authenticate(card)


def test_tampered_signature_fails():
    card = v3_card()

    def flip(c, cmd):
        if cmd.ins == 0x88 and c.current_df is c.pki.adf:
            data, sw = c.handlers[0x88](c, cmd)
            return data[:-1] + bytes((data[-1] ^ 0x01,)), sw
        return None

    card.command_hooks.append(flip)
    with pytest.raises(MismatchError, match="signature over the challenge does not verify"):
        authenticate(card)


def test_copied_certificate_without_the_private_key_fails():
    card = v3_card()
    card.pki.key = sm2.PrivateKey(12345)
    with pytest.raises(MismatchError, match="copied certificate"):
        authenticate(card)


def test_expired_certificate_fails_with_the_date():
    with pytest.raises(x509.CertificateExpiredError,
                       match=r"certificate TEST card C0000018X .* expired on 2033-03-15"):
        authenticate(v3_card(), now=datetime(2034, 1, 1, tzinfo=UTC))
    with pytest.raises(x509.CertificateExpiredError, match="not valid before 2023-03-15"):
        authenticate(v3_card(), now=datetime(2022, 1, 1, tzinfo=UTC))


def test_persona_with_expired_certificate(tmp_path):
    persona = tmp_path / "old3.toml"
    persona.write_text('extends = "v3"\nname = "old3"\n[extra.pki]\n'
                       'not_before = "2010-01-01"\nnot_after = "2020-01-01"\n', "utf-8")
    with pytest.raises(MismatchError, match="expired on 2020-01-01"):
        sm2_authenticate(channel_for(load_persona(str(persona)).build_card()), PROFILE, ROOTS)


def test_malformed_and_empty_certificate_files():
    card = v3_card()
    good = card.pki.certificate.der
    card.pki.set_certificate(good[:40] + b"\xff" * 4 + good[44:])
    with pytest.raises(MismatchError, match="malformed"):
        authenticate(card)
    card.pki.set_certificate(b"")
    with pytest.raises(MismatchError, match="empty"):
        authenticate(card)


def test_card_without_pki_application():
    with pytest.raises(MismatchError, match=r"no PKI application.*third-generation"):
        sm2_authenticate(channel_for(load_persona("demo").build_card()), PROFILE, ROOTS)


def test_trace_shows_default_command_bytes():
    records: list = []
    sm2_authenticate(channel_for(v3_card(), records), PROFILE, ROOTS, now=NOW)
    sent = [r.command for r in records]
    assert sent[0] == "00A404000C504B492EC9E7BBE1B1A3D5CF00"      # DDF PKI.社会保障
    assert sent[1] == "00A404000C53532E434552542E4144463100"      # ADF SS.CERT.ADF1
    assert sent[2] == "00A40000020018"   # P1=00, as public code selects EF 0018 [Z390][S12]
    auth = [c for c in sent if c.startswith("00880000")]
    assert len(auth) == 1 and len(auth[0]) == 2 * (5 + 32 + 1) and auth[0].endswith("00")
    assert len(records[-1].response) == 2 * (64 + 2)                # raw r‖s + 9000


def custom_profile(tmp_path: Path, section: str) -> Path:
    text = (Path(pki.__file__).parents[1] / "card" / "profiles" / "mohrss-3.0.toml").read_text(
        "utf-8")
    path = tmp_path / "region.toml"
    path.write_text(text[:text.index("[sm2_auth]")] + "[sm2_auth]\n" + section, "utf-8")
    return path


REGION = """
ddf_name = ""
adf_name = ""
adf_fid = "DF01"
cert_fid = "0018"
read_chunk = 100
name = "PSO COMPUTE DIGITAL SIGNATURE"
cla = "80"
ins = "2A"
p1 = "9E"
p2 = "9A"
data_prefix = "C2020013"
send = "digest"
user_id = "ALICE123"
signature = "der"
response_prefix = "9E"
le = "00"
"""


def test_profile_driven_command_reaches_the_card_and_the_trace(tmp_path):
    profile_path = custom_profile(tmp_path, REGION)
    persona = tmp_path / "region3.toml"
    persona.write_text(f'extends = "v3"\nname = "region3"\nprofile = "{profile_path}"\n',
                       "utf-8")
    card = load_persona(str(persona)).build_card()
    profile = load_profile(str(profile_path))
    records: list = []
    result = sm2_authenticate(channel_for(card, records), profile, ROOTS, now=NOW)
    sent = [r.command for r in records]
    assert sent[0] == "00A4000002DF0100"                            # ADF by FID, no DDF
    reads = [c for c in sent if c.startswith("00B0")]
    assert reads[0] == "00B0000064"                                 # chunk of 100
    auth = [c for c in sent if c.startswith("802A9E9A")]
    assert len(auth) == 1 and auth[0].startswith("802A9E9A24C2020013")
    config = Sm2AuthConfig.from_profile(profile)
    e = sm2.message_digest(result.certificate.public_key, result.challenge, b"ALICE123")
    assert auth[0][18:18 + 64] == e.hex().upper()                   # we sent e, not M
    assert records[-1].response.startswith("9E30")                  # prefix ‖ DER SEQUENCE
    assert config.describe() == "80 2A 9E 9A Lc C2020013‖e32 00"


def test_profile_mismatch_is_a_card_error_naming_the_assumption(tmp_path):
    profile = load_profile(str(custom_profile(tmp_path, 'ins = "86"\np1 = "00"\np2 = "00"\n')))
    with pytest.raises(CardError, match=r"00 86 00 00.*assumption.*6D00") as exc:
        sm2_authenticate(channel_for(v3_card()), profile, ROOTS, now=NOW)   # sim speaks 00 88
    assert exc.value.sw == 0x6D00


@pytest.mark.parametrize(("section", "message"), [
    ({"bogus": 1}, "unknown key"),
    ({"send": "both"}, "send: must be one of"),
    ({"signature": "asn1"}, "signature: must be one of"),
    ({"ins": "8"}, "odd number"),
    ({"p2": "0000"}, "must be 1 byte"),
    ({"adf_name": ""}, "adf_name or adf_fid"),
    ({"challenge_length": 0}, "challenge_length"),
    ({"data_prefix": "00" * 240}, "exceed 255"),
])
def test_bad_profile_sections(section, message):
    with pytest.raises(BadInputError, match=message):
        Sm2AuthConfig.from_mapping(section, "test")


def test_profile_default_user_id_is_the_one_crypto_computes_z_with():
    # One definition (sbcard.gmt), not two literals kept equal: the value itself is checked
    # by tests/test_crypto_sm2.py::test_public_key_and_z against the published Z.
    assert DEFAULT_USER_ID is sm2.DEFAULT_ID


def test_profile_without_section():
    with pytest.raises(BadInputError, match="no \\[sm2_auth\\]"):
        Sm2AuthConfig.from_profile(load_profile("mohrss-2.0"))


def test_t0_and_6c_quirks():
    card = v3_card(t0_get_response=True, le_zero_6c=True)
    assert authenticate(card).certificate.subject.common_name == "TEST card C0000018X"


def test_pki_selection_clears_ssse_state_and_keeps_symmetric_auth():
    from sbcard.keys.builtin import builtin_key_file
    from sbcard.ops.auth import internal_authenticate
    from sbcard.ops.pin import Pin, select_ssse, verify_pin
    from sbcard.ops.read import read_context

    card = v3_card()
    channel = channel_for(card)
    select_ssse(channel)
    verify_pin(channel, Pin("123456"))
    assert card.pin_verified
    sm2_authenticate(channel, PROFILE, ROOTS, now=NOW)
    assert not card.pin_verified and card.pki.signatures == 1
    internal_authenticate(channel, builtin_key_file(), read_context(channel))   # 00 88 in SSSE


def test_persona_can_leave_the_application_off(tmp_path):
    persona = tmp_path / "nopki.toml"
    persona.write_text('extends = "v3"\nname = "nopki"\n[extra.pki]\nenabled = false\n', "utf-8")
    card = load_persona(str(persona)).build_card()
    assert card.pki is None
    with pytest.raises(MismatchError, match="no PKI application"):
        authenticate(card)


# --------------------------------------------------------------------------- X.509


def test_x509_build_parse_round_trip():
    key = sm2.PrivateKey(0xC0FFEE)
    ca_key, ca = pki.test_root()
    subject = x509.Name.build(c="CN", o="人社 TEST", ou="519900", cn="张三 card")
    cert = x509.build_certificate(subject=subject, public_key=key.public_key, issuer=ca.subject,
                                  issuer_key=ca_key, serial=0x1234567890,
                                  not_before=date(2024, 1, 2), not_after=datetime(2051, 2, 3),
                                  deterministic=True)
    again = x509.Certificate.from_pem(cert.to_pem())
    assert again.der == cert.der and again.tbs == cert.tbs
    assert again.version == 3 and again.serial == 0x1234567890 and again.serial_hex == "1234567890"
    assert str(again.subject) == "C=CN, O=人社 TEST, OU=519900, CN=张三 card"
    assert again.issuer.matches(ca.subject) and again.public_key == key.public_key
    assert again.not_before == datetime(2024, 1, 2, tzinfo=UTC)
    assert again.not_after == datetime(2051, 2, 3, tzinfo=UTC)       # GeneralizedTime after 2049
    assert again.is_ca is False and again.key_usage == {"digitalSignature"}
    assert again.signature_algorithm == x509.OID_SM2_SM3
    assert again.verify_signature(ca.public_key)
    assert not again.verify_signature(key.public_key)
    assert ca.is_ca is True and ca.key_usage == {"keyCertSign", "cRLSign"}
    assert x509.build_certificate(subject=subject, public_key=key.public_key, issuer=ca.subject,
                                  issuer_key=ca_key, serial=0x1234567890,
                                  not_before=date(2024, 1, 2), not_after=datetime(2051, 2, 3),
                                  deterministic=True).der == cert.der
    assert x509.verify_chain(again, ROOTS, now=NOW) == [again, ROOTS[0]]


def test_x509_chain_through_an_intermediate_and_ca_checks():
    root_key, root = pki.test_root()
    mid_key = sm2.PrivateKey(777)
    mid_name = x509.Name.build(o="TEST", cn="TEST sub CA")
    mid = x509.build_certificate(subject=mid_name, public_key=mid_key.public_key,
                                 issuer=root.subject, issuer_key=root_key, serial=2,
                                 not_before=date(2021, 1, 1), not_after=date(2040, 1, 1),
                                 ca=True)
    leaf_key = sm2.PrivateKey(888)
    leaf = x509.build_certificate(subject=x509.Name.build(cn="leaf"),
                                  public_key=leaf_key.public_key, issuer=mid_name,
                                  issuer_key=mid_key, serial=3, not_before=date(2022, 1, 1),
                                  not_after=date(2030, 1, 1))
    assert x509.verify_chain(leaf, [root], intermediates=[mid], now=NOW) == [leaf, mid, root]
    with pytest.raises(x509.UntrustedCertificateError):
        x509.verify_chain(leaf, [root], now=NOW)
    # An end-entity certificate cannot issue others.
    fake = x509.build_certificate(subject=x509.Name.build(cn="leaf2"),
                                  public_key=mid_key.public_key, issuer=leaf.subject,
                                  issuer_key=leaf_key, serial=4, not_before=date(2022, 1, 1),
                                  not_after=date(2030, 1, 1))
    with pytest.raises(x509.UntrustedCertificateError, match="not a CA"):
        x509.verify_chain(fake, [leaf], now=NOW)


def test_x509_rejects_malformed_input():
    der = ROOTS[0].der
    with pytest.raises(x509.CertificateFormatError):
        x509.Certificate.from_der(der[:-3])
    with pytest.raises(x509.CertificateFormatError):
        x509.Certificate.from_der(der + b"\x00")
    with pytest.raises(x509.CertificateFormatError, match="no -----BEGIN CERTIFICATE"):
        x509.load_certificates("hello")
    bad = "-----BEGIN CERTIFICATE-----\nAAAA$$\n-----END CERTIFICATE-----\n"
    with pytest.raises(x509.CertificateFormatError, match="certificate file #1: "):
        x509.load_certificates(bad)                 # base64 junk: not a certificate
    non_der = b"\x30\x83\x00" + der[2:]              # a 3-byte length where 2 bytes do
    with pytest.raises(x509.CertificateFormatError, match="not DER"):
        x509.Certificate.from_der(non_der)
    with pytest.raises(BadInputError, match="cannot read"):
        load_trust_roots("/nonexistent/roots.pem")


def test_trust_store_with_non_sm2_roots(tmp_path):
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    k = ed25519.Ed25519PrivateKey.generate()
    name = cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, "ed25519 root")])
    other = (cx.CertificateBuilder().subject_name(name).issuer_name(name)
             .public_key(k.public_key()).serial_number(5)
             .not_valid_before(datetime(2020, 1, 1)).not_valid_after(datetime(2040, 1, 1))
             .sign(k, None)).public_bytes(serialization.Encoding.PEM).decode()
    parsed = x509.Certificate.from_pem(other)
    assert parsed.public_key is None and parsed.subject.common_name == "ed25519 root"
    only_other = tmp_path / "ed.pem"
    only_other.write_text(other)
    with pytest.raises(BadInputError, match="no SM2 certificate"):
        load_trust_roots(str(only_other))
    mixed = tmp_path / "mixed.pem"
    mixed.write_text(other + "\n" + shipped_root_pem())
    roots = load_trust_roots(str(mixed))
    assert [r.der for r in roots] == [ROOTS[0].der]


# --------------------------------------------------------------------------- OpenSSL interop


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
def test_openssl_reads_and_verifies_our_certificates(tmp_path):
    root = tmp_path / "root.pem"
    root.write_text(shipped_root_pem())
    card = tmp_path / "card.pem"
    card.write_text(v3_card().pki.certificate.to_pem())
    text = openssl("x509", "-in", str(card), "-noout", "-text")
    assert text.returncode == 0, text.stderr
    assert "SM2-with-SM3" in text.stdout and "ASN1 OID: SM2" in text.stdout
    assert "CA:FALSE" in text.stdout and "Digital Signature" in text.stdout
    root_text = openssl("x509", "-in", str(root), "-noout", "-text").stdout
    assert "CA:TRUE" in root_text and "Certificate Sign" in root_text
    # OpenSSL 3.0 signs and verifies SM2 certificates with an EMPTY user ID unless told
    # otherwise; GM/T 0015 certificates use the default ID, so name it (openssl#23162).
    ok = openssl("verify", "-vfyopt", DISTID, "-CAfile", str(root), str(card))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK"), ok.stdout + ok.stderr
    other = tmp_path / "other.pem"
    other.write_text(other_root()[1].to_pem())
    bad = openssl("verify", "-vfyopt", DISTID, "-CAfile", str(other), str(card))
    assert bad.returncode != 0


@pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
def test_we_verify_a_certificate_openssl_issued(tmp_path):
    ca_key, _ = pki.test_root()
    key_file = tmp_path / "ca.key"
    key_file.write_text(ca_key.to_pem())
    cert_file = tmp_path / "self.pem"
    made = openssl("req", "-x509", "-new", "-key", str(key_file), "-sm3", "-sigopt", DISTID,
                   "-subj", "/C=CN/O=openssl made/CN=interop", "-days", "30",
                   "-addext", "basicConstraints=critical,CA:TRUE", "-out", str(cert_file))
    assert made.returncode == 0, made.stderr
    cert = x509.Certificate.from_pem(cert_file.read_text())
    assert cert.subject.common_name == "interop" and cert.public_key == ca_key.public_key
    assert cert.verify_signature(ca_key.public_key)
    assert x509.verify_chain(cert, [cert]) == [cert]


# --------------------------------------------------------------------------- CLI




def test_cli_verify_card_sm2(capsys):
    code, out, err = run_cli(capsys, "--sim", "v3", "verify", "card", "--sm2", "--trust", "test",
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["genuine"] is True and data["method"] == "sm2"
    assert data["subject"].endswith("CN=TEST card C0000018X") and data["serial"]
    assert "TEST root" in err
    code, out, _ = run_cli(capsys, "--sim", "v3", "verify", "card", "--sm2", "--trust", "test")
    assert code == 0 and "SM2 signature" in out and "TEST card C0000018X" in out


def test_cli_verify_card_sm2_failures(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--sim", "demo", "verify", "card", "--sm2", "--trust", "test")
    assert code == 9 and "no PKI application" in err and len(err.strip().splitlines()) == 2
    code, _, err = run_cli(capsys, "--sim", "v3", "verify", "card", "--sm2")
    assert code == 2 and "--trust" in err
    code, _, err = run_cli(capsys, "--sim", "v3", "verify", "card", "--trust", "test")
    assert code == 2
    other = tmp_path / "other.pem"
    other.write_text(other_root("Other Root")[1].to_pem())
    code, _, err = run_cli(capsys, "--sim", "v3", "verify", "card", "--sm2", "--trust", str(other))
    assert code == 9 and "untrusted" in err
    code, _, err = run_cli(capsys, "--sim", "v3", "verify", "card", "--sm2", "--trust",
                       str(tmp_path / "missing.pem"))
    assert code == 3


def test_cli_symmetric_path_unchanged(capsys):
    code, out, _ = run_cli(capsys, "--sim", "v3", "--keys", "test", "verify", "card", "--json")
    assert code == 0 and json.loads(out)["method"] == "internal-authenticate"


def test_cli_uses_the_simulated_personas_profile(capsys, tmp_path):
    profile_path = custom_profile(tmp_path, REGION)
    persona = tmp_path / "region3.toml"
    persona.write_text(f'extends = "v3"\nname = "region3"\nprofile = "{profile_path}"\n',
                       "utf-8")
    code, out, err = run_cli(capsys, "--sim", str(persona), "--trace", "verify", "card", "--sm2",
                         "--trust", "test")
    assert code == 0, err
    assert "TEST card C0000018X" in out
    assert ">> 802A9E9A24C2020013" in err and ">> 0088" not in err


def test_same_der_parses_once_and_any_other_bytes_are_parsed_and_checked_again():
    """A certificate built, written and read back is parsed once (issue 10 §8 throughput);
    the reuse is by exact bytes, so one changed byte is parsed (and refused) as ever."""
    der = x509.Certificate.from_pem(shipped_root_pem()).der
    first = x509.Certificate.from_der(der)
    assert x509.Certificate.from_der(bytearray(der), "again") is first
    tampered = bytearray(der)
    tampered[-1] ^= 0x01                                   # inside the signature
    other = x509.Certificate.from_der(bytes(tampered))
    assert other is not first and other.signature != first.signature
    broken = der[:-1] + b"\x00\x00"                        # not one DER value any more
    for _ in range(2):
        with pytest.raises(x509.CertificateFormatError, match="card EF 0018"):
            x509.Certificate.from_der(broken, "card EF 0018")


def test_builtin_key_file_is_a_fresh_source_each_time():
    """The shipped key file is parsed once per process, but each caller gets its own key
    source (choosing a key version on one never changes another)."""
    from sbcard.keys.builtin import builtin_key_file

    a, b = builtin_key_file(), builtin_key_file()
    a.key_version = 2
    assert a is not b and b.key_version is None and a.roots == b.roots
