"""The C face of ``SSCardDriver``: what each exported symbol of libSSCardDriver.so does.

``build_native`` compiles ``native/SSCardDriver.h`` with cffi's embedding API; every exported
function lands in ``call`` with its C arguments. Here the GBK strings are decoded, the driver
method of the same name runs, and its ``(code, text)`` is written back: GBK, NUL-terminated,
never more than the function's ``OUTPUT_SIZES`` bytes per buffer (the one table of output
sizes; ``SSCARD_MAX_OUTPUT_<function>`` in SSCardDriver.h is rendered from it). A successful
result that would not fit becomes −42 with a message that does and names the size; a failure's
message that would not fit keeps its code and is cut at a character. Nothing raises past this
module: an unexpected error is −999.

The library holds one ``SSCardDriver`` for the process (built on the first call from
``load_config()``: driver.toml, then the environment). That is the C interface's own shape
(no handle argument); the driver inside serialises calls per reader.
"""

from __future__ import annotations

import threading
from typing import Any

from sbcard.national import codes

MAX_OUTPUT = 1024                 # SSCARD_MAX_OUTPUT in SSCardDriver.h: NUL included

#: Where the sizes come from: the Sichuan reader-interface spec (四川省人力资源社会保障系统数据
#: 交换平台社会保障卡读写机具规范 V2.0, gdgly/SI_3rdCard docs/), "升级部分接口定义", each
#: function's 函数定义 table, column 长度（十进制） of pOutInfo.
SPEC = "四川读写机具规范"

#: function → (bytes it may write into each output buffer, NUL included; where that is from).
#: A function the spec does not define gets ``MAX_OUTPUT`` (sbcard's default, the national
#: convention the spec uses for most functions).
OUTPUT_SIZES: dict[str, tuple[int, str]] = {
    "iReadCardBas": (1024, f"{SPEC} §1.1.1 表1"),
    "iReadCardBas_HSM_Step1": (1024, f"{SPEC} §1.2.1 表2"),
    "iReadCardBas_HSM_Step2": (1024, f"{SPEC} §1.3.1 表3"),
    "iVerifyPIN": (512, f"{SPEC} §4.1.1 表10"),
    "iChangePIN": (512, f"{SPEC} §5.1.1 表11"),
    "iReloadPIN": (512, f"{SPEC} §6.1.1 表12"),
    "iReloadPIN_HSM_Step1": (512, f"{SPEC} §6.2.1 表13"),
    "iReloadPIN_HSM_Step2": (1024, f"{SPEC} §6.3.1 表14"),
    "iReloadPIN_HSM_Step3": (1024, f"{SPEC} §6.4.1 表15"),
    "iUnblockPIN": (512, f"{SPEC} §7.1.1 表16"),
    "iUnblockPIN_HSM_Step1": (512, f"{SPEC} §7.2.1 表17"),
    "iUnblockPIN_HSM_Step2": (1024, f"{SPEC} §7.3.1 表18"),
    "iUnblockPIN_HSM_Step3": (1024, f"{SPEC} §7.4.1 表19"),
    "iReadCard": (1024 * 20, f"{SPEC} §2.1.1 表4: 1024*20"),
    "iReadCard_HSM_Step1": (1024, f"{SPEC} §2.2.1 表5"),
    "iReadCard_HSM_Step2": (1024 * 20, f"{SPEC} §2.3.1 表6: 1024*20"),
    "iWriteCard": (1024, f"{SPEC} §3.1.1 表7"),
    "iWriteCard_HSM_Step1": (1024, f"{SPEC} §3.2.1 表8"),
    "iWriteCard_HSM_Step2": (1024, f"{SPEC} §3.3.1 表9"),
    "iGetCardType": (MAX_OUTPUT, "not in the spec: the default, both buffers"),
    "iGetReaderInfo": (MAX_OUTPUT, "not in the spec: the default, both buffers"),
    "iGetDeviceInfo": (MAX_OUTPUT, "not in the spec: the default"),
    "iDoDebit": (512, f"{SPEC} §8.1.1 表20"),
    "iDoDebit_HSM_Step1": (512, f"{SPEC} §8.2.1 表21"),
    "iDoDebit_HSM_Step2": (1024, f"{SPEC} §8.3.1 表22"),
    "iReadDebitRecord": (2048, f"{SPEC} §9.1.1 表23"),
    "PKI_SignData": (MAX_OUTPUT, "not in the spec: the default"),
    "PKI_VerifySign": (MAX_OUTPUT, "not in the spec: the default"),
}


def output_size(name: str, ceiling: int | None = None) -> int:
    """Bytes ``name`` may write into each of its output buffers, NUL included; driver.toml's
    ``[output] max_bytes`` (``ceiling``) lowers it for a program that allocates one size."""
    size = OUTPUT_SIZES[name][0]
    return size if ceiling is None else min(size, ceiling)


def _ceiling() -> int | None:
    """The configured ``[output] max_bytes`` of the process's driver, if it has been built."""
    config = getattr(_driver, "config", None)
    return getattr(config, "max_output", None)

#: name → (inputs the Python method takes, output buffer parameter names), from the header.
SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "iReadCardBas": (("iType",), ("pOutInfo",)),
    "iReadCardBas_HSM_Step1": (("iType",), ("pOutInfo",)),
    "iReadCardBas_HSM_Step2": (("pKey",), ("pOutInfo",)),
    "iVerifyPIN": (("iType",), ("pOutInfo",)),
    "iChangePIN": (("iType",), ("pOutInfo",)),
    "iReloadPIN": (("iType", "pCardInfo"), ("pOutInfo",)),
    "iReloadPIN_HSM_Step1": (("iType", "pCardInfo"), ("pOutInfo",)),
    "iReloadPIN_HSM_Step2": (("pKey",), ("pOutInfo",)),
    "iReloadPIN_HSM_Step3": (("pKey",), ("pOutInfo",)),
    "iUnblockPIN": (("iType", "pCardInfo"), ("pOutInfo",)),
    "iUnblockPIN_HSM_Step1": (("iType", "pCardInfo"), ("pOutInfo",)),
    "iUnblockPIN_HSM_Step2": (("pKey",), ("pOutInfo",)),
    "iUnblockPIN_HSM_Step3": (("pKey",), ("pOutInfo",)),
    "iReadCard": (("iType", "iAuthType", "pCardInfo", "pFileAddr"), ("pOutInfo",)),
    "iReadCard_HSM_Step1": (("iType", "pCardInfo", "pFileAddr"), ("pOutInfo",)),
    "iReadCard_HSM_Step2": (("pKey",), ("pOutInfo",)),
    "iWriteCard": (("iType", "pCardInfo", "pFileAddr", "pWriteData"), ("pOutInfo",)),
    "iWriteCard_HSM_Step1": (("iType", "pCardInfo", "pFileAddr"), ("pOutInfo",)),
    "iWriteCard_HSM_Step2": (("pKey", "pWriteData"), ("pOutInfo",)),
    "iGetCardType": ((), ("pCardType", "pOutInfo")),
    "iGetReaderInfo": ((), ("pReaderSN", "pPsamTermNo")),
    "iGetDeviceInfo": ((), ("pOutInfo",)),
    "iDoDebit": (("iType", "pCardInfo", "pPayInfo"), ("pOutInfo",)),
    "iDoDebit_HSM_Step1": (("iType", "pCardInfo", "pPayInfo"), ("pOutInfo",)),
    "iDoDebit_HSM_Step2": (("pKey",), ("pOutInfo",)),
    "iReadDebitRecord": (("iType",), ("pOutInfo",)),
    "PKI_SignData": (("pUserPin", "pInData", "iType"), ("pOutInfo",)),
    "PKI_VerifySign": (("pUserPin", "pCert", "pClearText", "pSignature", "iType"),
                       ("pOutInfo",)),
}

_lock = threading.Lock()
_driver: Any = None
_driver_error: tuple[int, str] | None = None


def driver() -> Any:
    """The process's driver, built once (a configuration error is reported on every call)."""
    global _driver, _driver_error
    with _lock:
        if _driver is None and _driver_error is None:
            try:
                from sbcard.national.driver import SSCardDriver

                _driver = SSCardDriver()
            except Exception as exc:  # a bad driver.toml must not kill the host program
                _driver_error = (codes.LOAD_LIBRARY, f"{codes.message(codes.LOAD_LIBRARY)}"
                                                     f"（配置错误：{exc}）")
        if _driver_error is not None:
            raise codes.NationalError(*_driver_error)
        return _driver


def encode(text: str, limit: int = MAX_OUTPUT) -> bytes | None:
    """GBK bytes with the NUL, or None when they would pass ``limit``."""
    data = text.encode("gbk", errors="replace") + b"\0"
    return data if len(data) <= limit else None


def cut(text: str, limit: int) -> bytes:
    """A failure's message in ``limit`` bytes with the NUL: whole GBK characters, then "…"."""
    data = encode(text, limit)
    if data is not None:
        return data
    out = b""
    for ch in text:
        b = ch.encode("gbk", errors="replace")
        if len(out) + len(b) + len("…".encode("gbk")) + 1 > limit:
            break
        out += b
    return out + "…".encode("gbk") + b"\0"


def results(name: str, code: int, text: str, outputs: int) -> list[str]:
    """What goes into each output buffer of ``name``."""
    if outputs == 1:
        return [text]
    if name == "iGetCardType":               # pCardType, pOutInfo
        return [text, ""] if code == 0 else ["", text]
    if code != 0:                             # iGetReaderInfo: the message in the first
        return [text, ""]
    from sbcard.national.lines import split_fields

    fields = [*split_fields(text), "", ""]
    return fields[:outputs]


def run(name: str, inputs: list[Any]) -> tuple[int, str]:
    """The driver method ``name`` with decoded inputs; (−13, …) for a function not provided."""
    try:
        method = getattr(driver(), name, None)
        if method is None:
            return codes.UNSUPPORTED, codes.message(codes.UNSUPPORTED)
        return method(*inputs)
    except codes.NationalError as exc:
        return exc.code, exc.text
    except Exception:                        # never past the C boundary
        return codes.UNKNOWN, codes.message(codes.UNKNOWN)


def call(ffi: Any, name: str, args: tuple[Any, ...]) -> int:
    """One exported function: C ``args`` in header order, outputs written, code returned."""
    in_names, out_names = SIGNATURES[name]
    values = dict(zip(in_names + out_names, args, strict=True))
    inputs: list[Any] = []
    for n in in_names:
        v = values[n]
        if n.startswith("i"):
            inputs.append(int(v))
        else:
            inputs.append("" if v == ffi.NULL else ffi.string(v).decode("gbk", "replace"))
    outs = [values[n] for n in out_names]
    if any(p == ffi.NULL for p in outs):
        return codes.BAD_PARAMETER
    code, text = run(name, inputs)
    parts = results(name, code, text, len(outs))
    size = output_size(name, _ceiling())
    encoded = [encode(p, size) if code == 0 else cut(p, size) for p in parts]
    if any(e is None for e in encoded):
        code = codes.DATA_LENGTH
        message = f"{codes.message(code)}（输出超过{size}字节）"
        encoded = [cut(p, size) for p in results(name, code, message, len(outs))]
    for ptr, data in zip(outs, encoded, strict=True):
        assert data is not None
        ffi.memmove(ptr, data, len(data))
    return code
