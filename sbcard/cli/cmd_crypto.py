"""``sbcard crypto``: the library's algorithms at the command line, for debugging by hand.

Each command reads its options, calls one library function and prints: the calculations are
:mod:`sbcard.ops.crypto_calc` (ciphers, MAC, external authentication) and
:mod:`sbcard.keys.diversify` (levels of key diversification) over :mod:`sbcard.crypto`;
keys and data come in through :mod:`sbcard.ops.inputs` (hex, files, stdin, ``@FILE``,
``env:VAR``). Those modules are imported inside the command bodies so ``sbcard --help``
stays fast.

These commands print keys the engineer typed and keys derived from them: that is their point.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from sbcard.cli.common import echo_json, echo_table, label
from sbcard.errors import MismatchError, RefusedError
from sbcard.gmt import SM2_DEFAULT_USER_ID

if TYPE_CHECKING:
    from sbcard.crypto.sm2 import PrivateKey, PublicKey
    from sbcard.crypto.symmetric import Algorithm



# --------------------------------------------------------------------------- input / output


def _hex(text: str, what: str) -> bytes:
    from sbcard.hexutil import parse_hex

    return parse_hex(text, what)


def _secret_hex(value: str, what: str) -> bytes:
    from sbcard.ops.inputs import secret_hex

    return secret_hex(value, what)


def _out_hex(data: bytes) -> str:
    from sbcard.hexutil import to_hex

    return to_hex(data)


def _read_file(path: str, what: str) -> bytes:
    from sbcard.ops.inputs import read_file

    return read_file(path, what)


def _write_file(path: str, data: bytes, *, private: bool = False) -> None:
    from sbcard.ops.inputs import write_file

    write_file(path, data, private=private)


def _data(parts: tuple[str, ...], in_file: str | None, text: str | None = None,
          what: str = "data") -> bytes:
    """The one input among HEX arguments, ``--in FILE`` and (where offered) ``--text``."""
    from sbcard.ops.inputs import InputChoiceError, one_input

    ctx = click.get_current_context(silent=True)
    text_ok = ctx is not None and any(p.name == "text" for p in ctx.command.params)
    try:
        return one_input(parts, in_file, text, what=what, text_offered=text_ok)
    except InputChoiceError as exc:
        raise click.UsageError(str(exc)) from None


def _bytes_or_file(value: str, what: str) -> bytes:
    from sbcard.ops.inputs import bytes_or_file

    return bytes_or_file(value, what)


def _emit(data: bytes, out: str | None) -> None:
    """Binary to ``--out FILE``, else upper-case hex on stdout."""
    if out is None:
        click.echo(_out_hex(data))
    else:
        _write_file(out, data)


def _algorithm(name: str) -> Algorithm:
    from sbcard.crypto.symmetric import Algorithm

    return Algorithm[name.upper()]


_ALG_OPTION = click.option(
    "--alg", "alg", required=True, type=click.Choice(["des", "sm4"], case_sensitive=False),
    help="The card's algorithm environment: des (8-byte blocks; 8-byte key = DES, 16 = 3DES "
         "EDE2) or sm4 (16-byte blocks and keys).")
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _in_option(what: str = "data") -> Any:
    return click.option("--in", "in_file", metavar="FILE",
                        help=f"Read the {what} (binary) from FILE; - is stdin.")


# --------------------------------------------------------------------------- group


@click.group()
def crypto() -> None:
    """Cryptography for debugging by hand (密码运算): SM3 杂凑, SM4/DES 分组密码, the card's
    MAC 报文鉴别码, 密钥分散, 外部认证 data and SM2 签名/加密.

    \b
    Hex may be spaced or glued; binary input and output through --in/--out files.
    Nothing is padded silently. These are debug tools: output can contain key material.
    Examples:
      sbcard crypto sm3 --text abc
      sbcard crypto sm4 enc --key 0123456789ABCDEFFEDCBA9876543210 \\
          0123456789ABCDEFFEDCBA9876543210
      sbcard crypto diversify --alg sm4 --root 00112233445566778899AABBCCDDEEFF \\
          --region 650100 --atr 3B6D00000081...
      sbcard crypto sm2 keygen --out-key key.pem --out-pub pub.pem
    """


# --------------------------------------------------------------------------- SM3


@crypto.command()
@click.argument("hex_parts", nargs=-1, metavar="[HEX]")
@_in_option()
@click.option("--text", metavar="STRING", help="Hash STRING encoded as UTF-8.")
@_JSON_OPTION
def sm3(hex_parts: tuple[str, ...], in_file: str | None, text: str | None,
        as_json: bool) -> None:
    """SM3 杂凑 (GB/T 32905) of HEX, a file or a text: prints the 32-byte digest in hex.

    \b
      sbcard crypto sm3 616263
      sbcard crypto sm3 --text abc
      sbcard crypto sm3 --in photo.jpg
    """
    from sbcard.crypto.symmetric import sm3 as digest

    data = _data(hex_parts, in_file, text)
    result = _out_hex(digest(data))
    if as_json:
        echo_json({"algorithm": "SM3", "length": len(data), "digest": result})
    else:
        click.echo(result)


# --------------------------------------------------------------------------- SM4 / DES


_CIPHER_KEY_SIZES = {"sm4": (16, "SM4", (16,)), "des": (8, "DES", (8, 16, 24))}
# name: (block size, label, key lengths), for --help; sbcard.ops.crypto_calc.CIPHERS checks


def _cipher_command(name: str, encrypt: bool) -> click.Command:
    block, title, _ = _CIPHER_KEY_SIZES[name]
    what = "Encrypt" if encrypt else "Decrypt"
    help_text = (
        f"{what} with {title} ({'加密' if encrypt else '解密'}), ECB or CBC.\n\n"
        f"Data must be whole {block}-byte blocks unless --pad iso9797-m2 is given. Prints "
        "hex, or writes binary with --out."
    )

    @click.command(name="enc" if encrypt else "dec", help=help_text)
    @click.argument("hex_parts", nargs=-1, metavar="[HEX]")
    @click.option("--key", required=True, metavar="HEX|-|@FILE|env:VAR",
                  help="16-byte SM4 key." if name == "sm4" else
                  "8-byte DES key, 16-byte 3DES EDE2 key (K1‖K2, K3 = K1) or 24-byte "
                  "3DES EDE3 key (K1‖K2‖K3).")
    @click.option("--mode", type=click.Choice(["ecb", "cbc"], case_sensitive=False),
                  default="ecb", show_default=True, help="Block cipher mode.")
    @click.option("--iv", metavar="HEX",
                  help=f"CBC initial value, {block} bytes (default: all zeros, as the card "
                       "uses). Not allowed with ECB.")
    @_in_option("input")
    @click.option("--out", metavar="FILE", help="Write the result (binary) to FILE, not hex.")
    @click.option("--pad", type=click.Choice(["none", "iso9797-m2"], case_sensitive=False),
                  default="none", show_default=True,
                  help="iso9797-m2 = ISO/IEC 9797-1 method 2 (append 80 00…, always a "
                       "byte at least) before encrypting / strictly strip it after "
                       "decrypting. none = the data must be whole blocks.")
    def command(hex_parts: tuple[str, ...], key: str, mode: str, iv: str | None,
                in_file: str | None, out: str | None, pad: str) -> None:
        from sbcard.ops.crypto_calc import block_cipher

        key_bytes = _secret_hex(key, "--key")
        if iv is not None and mode.lower() != "cbc":
            raise click.UsageError("--iv applies to --mode cbc only")
        iv_bytes = _hex(iv, "--iv") if iv is not None else None
        data = _data(hex_parts, in_file, what="input")
        _emit(block_cipher(name, encrypt=encrypt, key=key_bytes, data=data, mode=mode,
                           iv=iv_bytes, pad=pad.lower() == "iso9797-m2"), out)

    return command


@crypto.group(name="sm4")
def sm4_group() -> None:
    """SM4 分组密码 (GB/T 32907) encryption/decryption, ECB or CBC, no implicit padding.

    \b
      sbcard crypto sm4 enc --key 0123456789ABCDEFFEDCBA9876543210 \\
          0123456789ABCDEFFEDCBA9876543210
      sbcard crypto sm4 dec --key … --mode cbc --iv … --in cipher.bin --out plain.bin
    """


@crypto.group(name="des")
def des_group() -> None:
    """DES / 3DES encryption/decryption, ECB or CBC, no implicit padding.

    \b
    Key length picks the algorithm: 8 bytes = single DES, 16 bytes = 3DES EDE2
    (K1‖K2, encrypt K1 / decrypt K2 / encrypt K1: the card's double-length keys),
    24 bytes = 3DES EDE3.
      sbcard crypto des enc --key 0123456789ABCDEFFEDCBA9876543210 1122334455667788
    """


for _verb in (True, False):
    sm4_group.add_command(_cipher_command("sm4", _verb))
    des_group.add_command(_cipher_command("des", _verb))


# --------------------------------------------------------------------------- card algorithms


@crypto.command()
@_ALG_OPTION
@click.option("--key", required=True, metavar="HEX|-|@FILE|env:VAR",
              help="Session key 过程密钥 (DES 8 bytes, SM4 16), or with "
                   "--derive-from-challenge the card key it is derived from.")
@click.argument("data_parts", nargs=-1, required=True, metavar="DATA")
@click.option("--iv", metavar="HEX",
              help="Initial value, one block (default all zeros; the PKI application uses "
                   "its challenge padded with 00).")
@click.option("--derive-from-challenge", "challenge", metavar="CHALLENGE",
              help="First derive the session key from --key (a card key) and this card "
                   "challenge (GET CHALLENGE answer, 4 or 8 bytes).")
@_JSON_OPTION
def mac(alg: str, key: str, data_parts: tuple[str, ...], iv: str | None,
        challenge: str | None, as_json: bool) -> None:
    """Secure-messaging MAC 报文鉴别码 as the card computes it (spec §5.6).

    DATA is `CLA INS P1 P2 Lc ‖ command data` with Lc counting the 4 MAC bytes; ISO 9797-1
    method 2 padding is added. DES: single-DES CBC, first 4 bytes of the last block; SM4:
    XOR of the last block's four quarters.

    \b
      sbcard crypto mac --alg des --key 1122334455667788 04D6820008 11223344
      sbcard crypto mac --alg sm4 --key <card key> --derive-from-challenge 8A1F03C4 \\
          04DC010C0C 1122334455667788
    Output contains key material (the session key) when it is derived.
    """
    from sbcard.ops.crypto_calc import card_mac

    algorithm = _algorithm(alg)
    key_bytes = _secret_hex(key, "--key")
    data = _hex(" ".join(data_parts), "DATA")
    iv_bytes = _hex(iv, "--iv") if iv is not None else None
    challenge_bytes = (_hex(challenge, "--derive-from-challenge")
                       if challenge is not None else None)
    result = card_mac(algorithm, key_bytes, data, iv=iv_bytes, challenge=challenge_bytes)
    if as_json:
        echo_json({
            "algorithm": algorithm.name,
            "challenge": _out_hex(result.challenge) if result.challenge is not None else None,
            "session_key": _out_hex(result.session_key),
            "iv": _out_hex(result.iv),
            "data": _out_hex(data),
            "mac": _out_hex(result.mac),
        })
    elif result.challenge is None:
        click.echo(_out_hex(result.mac))
    else:
        echo_table([
            (label("过程密钥", "Session key"), _out_hex(result.session_key)),
            (label("报文鉴别码", "MAC"), _out_hex(result.mac)),
        ])


_LEVEL_NAMES = {
    # level: (Chinese, English)
    "province": ("省级", "province"),
    "city": ("地市", "city"),
    "card": ("卡片", "card"),
}


@crypto.command()
@_ALG_OPTION
@click.option("--root", required=True, metavar="HEX",
              help="Root key 根密钥 (DES 8 or 16 bytes, SM4 16), --levels above the card key.")
@click.option("--region", metavar="6DIGITS",
              help="Issuing region code 地区代码 (卡的识别码 digits 1-6): gives the city "
                   "(地市) and province (省级) factors.")
@click.option("--atr", metavar="HEX",
              help="The card's ATR, or just its 13 historical bytes: the card factor is "
                   "historical bytes 6-13 (part 9 §7.3.3; an ATR's TCK is skipped). Without "
                   "it, diversification stops above the card level.")
@click.option("--levels", type=click.IntRange(1, 3), default=2, show_default=True, metavar="1|2|3",
              help="Levels from the root to the card key: 1 card; 2 city, card; "
                   "3 province, city, card.")
@click.option("--factor", "factors", multiple=True, metavar="HEX",
              help="Explicit 8-byte factor, repeatable, in PSAM order (card factor first); "
                   "applied last to first. Replaces --region/--atr/--levels.")
@_JSON_OPTION
def diversify(alg: str, root: str, region: str | None, atr: str | None, levels: int,
              factors: tuple[str, ...], as_json: bool) -> None:
    """Key diversification 密钥分散 (spec §5.4): each factor and each intermediate key.

    \b
    The root is diversified with the province factor ("PP0000sh"), then the city factor
    ("CCCCCCsx"; "CCCC00sx" in Zhejiang) and the card factor (historical bytes 6-13), starting
    at the level --levels says the root sits at.
      sbcard crypto diversify --alg sm4 --root 00112233445566778899AABBCCDDEEFF \\
          --region 650100 --atr 3B6D000000815448…
      sbcard crypto diversify --alg des --root <16 bytes> --factor <card> --factor <city>
    Output contains key material: the root and every derived key.
    """
    from click.core import ParameterSource

    from sbcard.keys.diversify import FactorChoiceError, diversify_root

    algorithm = _algorithm(alg)
    levels_given = (click.get_current_context().get_parameter_source("levels")
                    is not ParameterSource.DEFAULT)
    try:
        result = diversify_root(
            algorithm, _hex(root, "--root"), region=region,
            atr=_hex(atr, "--atr") if atr is not None else None,
            levels=levels if levels_given else None,
            factors=[_hex(f, f"--factor {i}") for i, f in enumerate(factors, start=1)])
    except FactorChoiceError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        echo_json({"algorithm": algorithm.name, "root": _out_hex(result.root),
                   "levels": result.levels,
                   "steps": [{"level": step.level, "factor": _out_hex(step.factor),
                              "factor_ascii": step.factor_ascii, "key": _out_hex(step.key)}
                             for step in result.steps],
                   "key": _out_hex(result.key), "complete": result.complete,
                   "note": result.note})
        return
    table = [(label("算法", "Algorithm"), algorithm.name),
             (label("根密钥", "Root key"), _out_hex(result.root))]
    for step in result.steps:
        shown = _out_hex(step.factor) + (f'  "{step.factor_ascii}"' if step.factor_ascii else "")
        if step.level in _LEVEL_NAMES:
            zh, en = _LEVEL_NAMES[step.level]
            names = (label(f"{zh}分散因子", f"{en} factor"), label(f"{zh}密钥", f"{en} key"))
        else:  # explicit --factor N
            names = (label("分散因子", step.level),
                     label("分散结果", f"key after {step.level}"))
        table += [(names[0], shown), (names[1], _out_hex(step.key))]
    if result.note:
        table.append((label("注意", "Note"), result.note))
    echo_table(table)


@crypto.command()
@_ALG_OPTION
@click.option("--key", required=True, metavar="HEX|-|@FILE|env:VAR",
              help="Card key 卡片密钥 (already diversified; DES 8 or 16 bytes, SM4 16).")
@click.option("--challenge", required=True, metavar="HEX",
              help="The card's GET CHALLENGE answer, 过程因子 R (4 or 8 bytes).")
@click.option("--original", required=True, metavar="HEX",
              help="The terminal's 8 random bytes X, 原始信息.")
@click.option("--key-id", metavar="HEX",
              help="Also print the whole APDU 00 82 00 <key id> …: the card key ID (P2).")
@click.option("--key-version", metavar="HEX",
              help="Key version byte appended after X (only with --key-id).")
@_JSON_OPTION
def auth(alg: str, key: str, challenge: str, original: str, key_id: str | None,
         key_version: str | None, as_json: bool) -> None:
    """EXTERNAL AUTHENTICATE 外部认证 data (spec §5.5): A and the APDU data A‖X.

    The session key is derived from the card key and the challenge, then A is computed over
    X (DES: DES_SK(X); SM4: T = SM4_SK(X‖00×8), A = T[0:8] ⊕ T[8:16]).

    \b
      sbcard crypto auth --alg sm4 --key 00112233445566778899AABBCCDDEEFF \\
          --challenge 1122334455667788 --original A1A2A3A4A5A6A7A8 --key-id 0A
    Output contains key material (the session key).
    """
    from sbcard.ops.crypto_calc import external_auth

    algorithm = _algorithm(alg)
    key_bytes = _secret_hex(key, "--key")
    challenge_bytes = _hex(challenge, "--challenge")
    x = _hex(original, "--original")
    if key_version is not None and key_id is None:
        raise click.UsageError("--key-version needs --key-id")
    result = external_auth(
        algorithm, key_bytes, challenge_bytes, x,
        key_id=_one_byte(key_id, "--key-id") if key_id is not None else None,
        key_version=_one_byte(key_version, "--key-version") if key_version is not None
        else None)
    apdu = _out_hex(result.apdu) if result.apdu is not None else None
    if as_json:
        echo_json({"algorithm": algorithm.name, "challenge": _out_hex(challenge_bytes),
                   "original": _out_hex(x), "session_key": _out_hex(result.session_key),
                   "auth_data": _out_hex(result.auth_data),
                   "apdu_data": _out_hex(result.apdu_data), "apdu": apdu})
        return
    rows = [
        (label("过程密钥", "Session key"), _out_hex(result.session_key)),
        (label("认证数据", "A"), _out_hex(result.auth_data)),
        (label("命令数据", "A‖X"), _out_hex(result.apdu_data)),
    ]
    if apdu is not None:
        rows.append((label("命令", "APDU"), apdu))
    echo_table(rows)


def _one_byte(text: str, what: str) -> int:
    from sbcard.ops.inputs import one_byte

    return one_byte(text, what)


# --------------------------------------------------------------------------- SM2


@crypto.group(name="sm2")
def sm2_group() -> None:
    """SM2 (GB/T 32918): key generation, 签名/验签 and 加密/解密 on the recommended curve.

    \b
    Keys are PEM, DER or hex files, or hex strings (format detected). The signer's ID
    defaults to 1234567812345678 (GM/T 0009). Signatures are raw r‖s (64 bytes, as the card
    returns them) or DER (what OpenSSL uses); ciphertexts are C1C3C2 (GB/T 32918.4-2016),
    C1C2C3 (older code) or GM/T 0009 DER.
      sbcard crypto sm2 keygen --out-key key.pem --out-pub pub.pem
      sbcard crypto sm2 sign --key key.pem --format der --text hello --out sig.der
      sbcard crypto sm2 verify --pub pub.pem --format der --sig sig.der --text hello
    """


def _private_key(value: str) -> PrivateKey:
    from sbcard.crypto import sm2

    key = sm2.load_private_key(_bytes_or_file(value, "--key"))
    if os.path.isfile(value) and os.stat(value).st_mode & 0o077:    # as --keys refuses one
        click.echo(f"WARNING: private key file {value} is readable by other users: "
                   f"chmod 600 {value}", err=True)
    return key


def _public_key(value: str) -> PublicKey:
    from sbcard.crypto import sm2

    return sm2.load_public_key(_bytes_or_file(value, "--pub"))


_ID_OPTION = click.option(
    "--id", "uid", default=SM2_DEFAULT_USER_ID.decode(), show_default=True, metavar="ID",
    help="Signer's user ID (UTF-8) that goes into Z_A.")
_ORDER_OPTION = click.option(
    "--order", type=click.Choice(["C1C3C2", "C1C2C3"], case_sensitive=False),
    help="Raw ciphertext order. [default: C1C3C2]")
_DER_OPTION = click.option(
    "--der", is_flag=True,
    help="Ciphertext as GM/T 0009 DER SEQUENCE {x, y, C3, C2} (as OpenSSL), not raw bytes.")


def _uid(uid: str) -> bytes:
    return uid.encode("utf-8")


@sm2_group.command()
@click.option("--out-key", metavar="FILE", help="Write the private key here (mode 0600).")
@click.option("--out-pub", metavar="FILE", help="Write the public key here.")
@click.option("--format", "fmt", type=click.Choice(["pem", "der", "hex"], case_sensitive=False),
              default="pem", show_default=True,
              help="pem/der: PKCS#8 private key and SubjectPublicKeyInfo (what openssl "
                   "reads); hex: the 32-byte scalar d and 04‖X‖Y.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out-key file.")
def keygen(out_key: str | None, out_pub: str | None, fmt: str, force: bool) -> None:
    """Generate an SM2 key pair 生成密钥对.

    What is not written to a file is printed, so without --out-key the private key goes to
    stdout. An existing private key file is not overwritten without --force.

    \b
      sbcard crypto sm2 keygen --out-key key.pem --out-pub pub.pem
      sbcard crypto sm2 keygen --format hex
    """
    from sbcard.crypto.sm2 import PrivateKey
    from sbcard.ops.crypto_calc import encode_keypair

    fmt = fmt.lower()
    if fmt == "der" and (out_key is None or out_pub is None):
        raise click.UsageError("--format der is binary: give both --out-key and --out-pub, "
                               "or use --format pem or hex")
    if out_key is not None and not force and os.path.exists(out_key):
        raise RefusedError(f"{out_key!r} exists; not overwriting a key file without --force")
    private, public = encode_keypair(PrivateKey.generate(), fmt)
    for data, path, is_private, what in ((private, out_key, True, "private key"),
                                         (public, out_pub, False, "public key")):
        if path is None:
            click.echo(data.decode("ascii"), nl=False)
        else:
            _write_file(path, data, private=is_private)
            mode = " (mode 0600)" if is_private else ""
            click.echo(f"wrote {what} to {path}{mode}", err=True)


@sm2_group.command()
@click.option("--key", required=True, metavar="FILE_OR_HEX",
              help="Private key: PEM/DER/hex file or 64 hex digits.")
@_ID_OPTION
@click.option("--format", "fmt", type=click.Choice(["raw", "der"], case_sensitive=False),
              default="raw", show_default=True,
              help="raw = r‖s, 64 bytes (the card's form); der = SEQUENCE {r, s} (OpenSSL).")
@click.argument("hex_parts", nargs=-1, metavar="[HEX]")
@_in_option("message")
@click.option("--text", metavar="STRING", help="Sign STRING encoded as UTF-8.")
@click.option("--out", metavar="FILE", help="Write the signature (binary) to FILE, not hex.")
@_JSON_OPTION
def sign(key: str, uid: str, fmt: str, hex_parts: tuple[str, ...], in_file: str | None,
         text: str | None, out: str | None, as_json: bool) -> None:
    """Sign a message 签名: SM3(Z_A‖M) with Z_A from --id.

    \b
      sbcard crypto sm2 sign --key key.pem --text hello
      sbcard crypto sm2 sign --key key.pem --format der --in msg.bin --out sig.der
    With --json, the digests Z_A and e = SM3(Z_A‖M) are shown too (compare with a card).
    """
    from sbcard.crypto import sm2

    private = _private_key(key)
    message = _data(hex_parts, in_file, text, what="message")
    signature = sm2.sign(private, message, uid=_uid(uid), encoding=fmt.lower())
    if out is not None:
        _write_file(out, signature)
    if as_json:
        echo_json({
            "format": fmt.lower(), "id": uid,
            "public_key": private.public_key.to_hex(),
            "z": _out_hex(sm2.compute_z(private.public_key, _uid(uid))),
            "e": _out_hex(sm2.message_digest(private.public_key, message, _uid(uid))),
            "signature": _out_hex(signature),
        })
    elif out is None:
        click.echo(_out_hex(signature))


@sm2_group.command()
@click.option("--pub", required=True, metavar="FILE_OR_HEX",
              help="Public key: PEM/DER/hex file, or 04‖X‖Y / X‖Y hex.")
@_ID_OPTION
@click.option("--format", "fmt", type=click.Choice(["auto", "raw", "der"], case_sensitive=False),
              default="auto", show_default=True,
              help="Signature encoding; auto = raw when 64 bytes, DER when it starts with 30.")
@click.option("--sig", required=True, metavar="HEX_OR_FILE",
              help="The signature: hex, or a file (binary or hex text).")
@click.argument("hex_parts", nargs=-1, metavar="[HEX]")
@_in_option("message")
@click.option("--text", metavar="STRING", help="The message is STRING encoded as UTF-8.")
@_JSON_OPTION
def verify(pub: str, uid: str, fmt: str, sig: str, hex_parts: tuple[str, ...],
           in_file: str | None, text: str | None, as_json: bool) -> None:
    """Verify a signature 验签. Exit code 0 when valid, 9 when it does not verify.

    A malformed signature (wrong length, bad DER) is bad input (exit code 3).

    \b
      sbcard crypto sm2 verify --pub pub.pem --sig sig.der --in msg.bin
      sbcard crypto sm2 verify --pub 04… --id ALICE123@YAHOO.COM --sig … 6D657373616765
    """
    from sbcard.crypto import sm2
    from sbcard.ops.crypto_calc import signature_format

    public = _public_key(pub)
    signature = _bytes_or_file(sig, "--sig")
    message = _data(hex_parts, in_file, text, what="message")
    fmt = signature_format(signature, fmt)
    valid = sm2.verify(public, message, signature, uid=_uid(uid), encoding=fmt)
    if as_json:
        echo_json({"valid": valid, "format": fmt, "id": uid,
                   "public_key": public.to_hex()})
    if not valid:
        raise MismatchError(
            "SM2 signature does not verify 验签失败 (wrong key, message, --id or signature)"
        )
    if not as_json:
        click.echo("signature valid 签名有效")


@sm2_group.command()
@click.option("--pub", required=True, metavar="FILE_OR_HEX",
              help="Public key: PEM/DER/hex file, or 04‖X‖Y / X‖Y hex.")
@_ORDER_OPTION
@_DER_OPTION
@click.argument("hex_parts", nargs=-1, metavar="[HEX]")
@_in_option("plaintext")
@click.option("--text", metavar="STRING", help="Encrypt STRING encoded as UTF-8.")
@click.option("--out", metavar="FILE", help="Write the ciphertext (binary) to FILE, not hex.")
def encrypt(pub: str, order: str | None, der: bool, hex_parts: tuple[str, ...],
            in_file: str | None, text: str | None, out: str | None) -> None:
    """Encrypt 加密 to a public key: C1 (04‖X‖Y) ‖ C3 ‖ C2, or C1‖C2‖C3, or DER.

    \b
      sbcard crypto sm2 encrypt --pub pub.pem --text secret
      sbcard crypto sm2 encrypt --pub pub.pem --der --in plain.bin --out ct.der
    """
    from sbcard.crypto import sm2

    if der and order is not None:
        raise click.UsageError("--order does not apply with --der (DER is x, y, C3, C2)")
    public = _public_key(pub)
    plaintext = _data(hex_parts, in_file, text, what="plaintext")
    ciphertext = sm2.encrypt(public, plaintext, order=(order or "C1C3C2").upper())
    if der:
        ciphertext = sm2.ciphertext_to_der(ciphertext)
    _emit(ciphertext, out)


@sm2_group.command()
@click.option("--key", required=True, metavar="FILE_OR_HEX",
              help="Private key: PEM/DER/hex file or 64 hex digits.")
@_ORDER_OPTION
@_DER_OPTION
@click.argument("hex_parts", nargs=-1, metavar="[HEX]")
@_in_option("ciphertext")
@click.option("--out", metavar="FILE", help="Write the plaintext (binary) to FILE, not hex.")
def decrypt(key: str, order: str | None, der: bool, hex_parts: tuple[str, ...],
            in_file: str | None, out: str | None) -> None:
    """Decrypt 解密 with a private key; C3 is always checked (mismatch: exit code 3).

    C1 may be 04‖X‖Y or X‖Y (the card's envelope form).

    \b
      sbcard crypto sm2 decrypt --key key.pem 04…
      sbcard crypto sm2 decrypt --key key.pem --der --in ct.der --out plain.bin
    """
    from sbcard.crypto import sm2

    if der and order is not None:
        raise click.UsageError("--order does not apply with --der (DER is x, y, C3, C2)")
    private = _private_key(key)
    ciphertext = _data(hex_parts, in_file, what="ciphertext")
    if der:
        ciphertext = sm2.ciphertext_from_der(ciphertext)
    plaintext = sm2.decrypt(private, ciphertext, order=(order or "C1C3C2").upper())
    _emit(plaintext, out)
