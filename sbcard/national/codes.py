"""The one table of return codes of the national reader interface, with their Chinese text.

Sources: the error table of 人社信息函〔2016〕38号 as restated in the Sichuan reader spec
appendix A (``gdgly/SI_3rdCard`` ``docs/四川省社会保障卡读写机具规范2.0.doc``) and as the public
driver implements it: ``gdgly/SI_3rdCard`` ``code/SSCARD/SSCARD/SSCARD/SSCARDCtrl.cpp``
(``returnMap`` lines 32-87, ``getRetMsgBySw1Sw2`` lines 91-119) and
``code/JavaScript/SSCARD.js`` (``retmsgJson`` lines 626-681, ``getRetMsg`` lines 684-695).
Rules:

- 0 is success; −1 … −52 are driver codes; −2201 … −2204 are PSAM/HSM codes (integrators fall
  back to the ``*_HSM_Step`` functions on −2201, −2202, −2203, −27272 and −24).
- A card status word the public driver maps gets the public driver's code, because that is
  what integrators' code compares with (``PUBLIC_SW``; each row's ``sw``). Five of these are
  not the SW's negative decimal: 6C00 → −26368, 6700 → −26369, 6A86 → −26370, 6E00 → −26371
  (SSCARDCtrl.cpp lines 66-69, SSCARD.js lines 660-663) and 6986 → −26881 (line 70 / 664).
  Like the public code (SSCARDCtrl.cpp lines 95-100, SSCARD.js line 686), every 6Exx is −26371.
- A card status word the public table does not list is returned as its negative decimal
  value (6982 → −27010, 6901 → −26881, 6C08 → −27656), with the national text where the table
  has one, else our SW table's text. (The public driver answers −999 for those; the decimal
  keeps the SW recoverable, as the spec's restatement §7.3 says card SWs are returned.)
- In PIN commands 63Cx becomes −51 ("N tries left", N = SW2 & 0x0F) and 63C0 and 6983 become
  −52. Outside PIN commands (external authentication) 63Cx stays negative decimal, i.e. the
  table's −25536/−25537/−25538 rows.

Where sbcard deliberately differs from the public C++ (each checked by
``tests/test_national.py::test_status_words_follow_the_public_returnmap``):

- SSCARDCtrl.cpp line 101 maps *every* 63xx to −51 "PIN校验失败", an external authentication
  failure too; the table has its own rows for that (−25536…−25538), which sbcard returns.
  63C0 in a PIN command is −52 PIN锁定 (no tries left), not "−51, 0 tries".
- SSCARDCtrl.cpp line 75 pairs −27013 (6985's text) with 9303, a copy slip that shadows line 83
  in its first-match loop; SSCARD.js line 677 pairs 9303 with −37635 (its text, its decimal),
  as sbcard does; 6985 is −27013 by the decimal rule.
- The FFxx pairs (−1 FF00, −2201 FF30, …) are the vendor reader library's own statuses, not
  card SWs; sbcard reaches those codes from its own errors.

The table's −25536/−25537/−25538 rows ("external authentication failed, 2/1/0 tries left") are
63C0/63C1/63C2 by the negative-decimal rule, the reverse of the SW meaning (63Cx = x tries
left); sbcard returns the rule's code and writes the tries from the SW itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbcard.apdu.sw import SW, CardError, lookup_sw
from sbcard.errors import (
    BadInputError,
    CardRemovedError,
    ExitCode,
    NoCardError,
    SbcardError,
    TransportError,
)


@dataclass(frozen=True)
class NationalCode:
    code: int
    zh: str          # the text integrators show (pOutInfo on failure)
    en: str          # for our docs and logs
    sw: int | None = None    # the card SW the public driver maps to this code, if any


OK = 0
CARD_TYPE = -1
NO_CARD = -2
NOT_POWERED = -3
NO_ANSWER = -4
LOAD_LIBRARY = -5
READER_LINK = -11
NOT_CONNECTED = -12
UNSUPPORTED = -13
BAD_PARAMETER = -14
CHECKSUM = -15
CARD_ID_FORMAT = -20
INTERNAL_AUTH = -21
CARD_MISMATCH = -22
BAD_DATA = -23
PSAM_KEY_LEVEL = -24
HSM_INTERNAL_AUTH = -25
PIN_CANCELLED = -31
PIN_TIMEOUT = -32
PIN_LENGTH = -33
PIN_DIFFERENT = -34
PIN_INITIAL_TRADE = -35
PIN_TO_INITIAL = -36
BAD_CHARACTER = -41
DATA_LENGTH = -42
PIN_WRONG = -51
PIN_LOCKED = -52
NO_PSAM = -2201
PSAM_ALGORITHM = -2202
PSAM_NO_RKSSSE = -2203
HSM_NOT_NEEDED = -2204
UNKNOWN = -999
#: ``SSCardDriver.read_photo`` (not national): EF08 absent or empty, by the 6A82 rule.
NO_PHOTO = -27266

TABLE: tuple[NationalCode, ...] = (
    NationalCode(OK, "成功", "success"),
    NationalCode(CARD_TYPE, "卡类型不对", "wrong card type (also: iType not 1-4)"),
    NationalCode(NO_CARD, "无卡", "no card in the reader"),
    NationalCode(NOT_POWERED, "有卡未上电", "card present but not powered"),
    NationalCode(NO_ANSWER, "卡无应答", "the card does not answer (removed during a command)"),
    NationalCode(LOAD_LIBRARY, "加载动态库错", "loading a library failed"),
    NationalCode(READER_LINK, "读卡器连接错", "reader connection error (no reader, no pcscd)"),
    NationalCode(NOT_CONNECTED, "未建立连接", "no connection established"),
    NationalCode(UNSUPPORTED, "（动态库）不支持该命令", "function not supported"),
    NationalCode(BAD_PARAMETER, "（发给动态库的）命令参数错", "bad parameter"),
    NationalCode(CHECKSUM, "信息校验和出错", "checksum error"),
    NationalCode(CARD_ID_FORMAT, "卡识别码格式错", "card identification code malformed"),
    NationalCode(INTERNAL_AUTH, "内部认证失败（用户卡不合法)", "internal authentication failed"),
    NationalCode(CARD_MISMATCH, "传入数据与卡内不符", "pCardInfo differs from the card"),
    NationalCode(BAD_DATA, "传入数据不合法", "input data invalid"),
    NationalCode(PSAM_KEY_LEVEL, "PSAM卡密钥级别不够", "PSAM key level insufficient"),
    NationalCode(HSM_INTERNAL_AUTH, "内部认证与加密机不一致失败",
                 "the card's internal authentication differs from the HSM's"),
    NationalCode(PIN_CANCELLED, "用户取消密码输入", "PIN entry cancelled"),
    NationalCode(PIN_TIMEOUT, "密码输入操作超时", "PIN entry timed out"),
    NationalCode(PIN_LENGTH, "输入密码长度错", "PIN length wrong"),
    NationalCode(PIN_DIFFERENT, "两次输入密码不一致", "the two new PINs differ"),
    NationalCode(PIN_INITIAL_TRADE, "初始密码不能交易", "initial PIN cannot be used"),
    NationalCode(PIN_TO_INITIAL, "不能改为初始密码", "cannot change to the initial PIN"),
    NationalCode(BAD_CHARACTER, "运算数据含非法字符", "illegal character in the data"),
    NationalCode(DATA_LENGTH, "运算数据长度错", "data length wrong"),
    NationalCode(PIN_WRONG, "PIN校验失败，剩余次数N次", "PIN wrong, N tries left"),
    NationalCode(PIN_LOCKED, "PIN锁定", "PIN locked"),
    NationalCode(NO_PSAM, "无PSAM卡", "no PSAM"),
    NationalCode(PSAM_ALGORITHM, "PSAM卡算法不支持（即PSAM卡内没有SSF33算法或SM4算法）",
                 "the PSAM lacks the card's algorithm"),
    NationalCode(PSAM_NO_RKSSSE,
                 "PSAM卡内没有RKSSSE密钥（3.0卡读个人基本信息需要RKSSSE密钥外部认证）",
                 "the PSAM has no RKSSSE key (3.0 cards need it for EF06)"),
    NationalCode(HSM_NOT_NEEDED, "不需要加密机认证", "no HSM authentication needed"),
    NationalCode(-25536, "外部认证失败，剩余可尝试次数0次", "external auth failed (63C0)"),
    NationalCode(-25537, "外部认证失败，剩余可尝试次数1次", "external auth failed (63C1)"),
    NationalCode(-25538, "外部认证失败，剩余可尝试次数2次", "external auth failed (63C2)"),
    # SWs with the public driver's pairing (SSCARDCtrl.cpp lines 66-70, SSCARD.js 660-664);
    # texts as the public table prints them.
    NationalCode(-26368, "Lc/Le不正确", "6C00 wrong Le (public pairing, not 6700)", 0x6C00),
    NationalCode(-26369, "P1、 P2 与 Lc 不一致", "6700 wrong length (public pairing)", 0x6700),
    NationalCode(-26370, "参数 P1、 P2 不正确", "6A86 P1/P2 wrong (public pairing)", 0x6A86),
    NationalCode(-26371, "CLA 错", "6E00 (any 6Exx) class not supported (public pairing)",
                 0x6E00),
    NationalCode(-26881, "命令不接受（无效状态）",
                 "6986 (public pairing) and 6901 (its decimal): command not accepted", 0x6986),
    NationalCode(-27009, "命令与文件结构不相符、当前文件非所需文件", "6981", 0x6981),
    NationalCode(-27010, "不满足安全条件", "6982 security status not satisfied", 0x6982),
    NationalCode(-27011, "密钥锁定（算法锁定）鉴别方法锁定", "6983 key/method blocked", 0x6983),
    NationalCode(-27012, "引用数据无效、随机数无效", "6984 reference data invalid", 0x6984),
    NationalCode(-27013, "不满足使用条件、应用被锁定、应用未选择、余额上溢", "6985"),
    NationalCode(-27016, "安全报文数据项不正确、MAC不正确", "6988 secure messaging wrong", 0x6988),
    NationalCode(-27264, "数据域参数不正确", "6A80 data field wrong", 0x6A80),
    NationalCode(-27265, "不支持该功能、卡中无MF、卡被锁定、应用锁定", "6A81", 0x6A81),
    NationalCode(-27266, "未找到文件、文件标识相重、SFI不正确", "6A82 file not found", 0x6A82),
    NationalCode(-27267, "未找到记录", "6A83 record not found", 0x6A83),
    NationalCode(-27272, "未找到引用数据、未找到密钥", "6A88 key not found", 0x6A88),
    NationalCode(-37634, "MAC无效", "9302 MAC invalid"),
    NationalCode(-37635, "应用已被永久锁定、卡片锁定", "9303 application blocked", 0x9303),
    NationalCode(-37891, "PSAM卡不支持消费交易", "9403"),
    NationalCode(-37894, "所需MAC（或/和TAC）不可用", "9406"),
    NationalCode(UNKNOWN, "未知错误", "unknown error"),
)

BY_CODE: dict[int, NationalCode] = {c.code: c for c in TABLE}

#: Card SW → code where the public driver maps the SW (module docstring); the rest of the
#: SWs are their negative decimal value.
PUBLIC_SW: dict[int, int] = {c.sw: c.code for c in TABLE if c.sw is not None}
#: SW1 whose every SW2 the public driver maps to one code (SSCARDCtrl.cpp lines 95-100).
PUBLIC_SW1 = {0x6E: -26371}

#: Codes after which integrators switch to the HSM steps (spec §5.8).
HSM_FALLBACK = frozenset({NO_PSAM, PSAM_ALGORITHM, PSAM_NO_RKSSSE, -27272, PSAM_KEY_LEVEL})


def message(code: int) -> str:
    """The Chinese text for ``code``; an SW code not in the table gets our SW table's text."""
    found = BY_CODE.get(code)
    if found is not None:
        return found.zh
    if -0xFFFF <= code <= -0x6000:
        entry = lookup_sw(-code)
        return f"卡片返回{-code:04X}：{entry.zh}" if entry.zh else f"卡片返回{-code:04X}"
    return f"错误{code}"


def pin_wrong_message(tries: int) -> str:
    return f"PIN校验失败，剩余次数{tries}次"


def for_sw(sw: int, *, pin: bool = False) -> tuple[int, str]:
    """(code, text) for a card status word; ``pin`` applies the PIN-command rules.

    The public driver's code where it maps the SW (``PUBLIC_SW``, 6Exx), else −SW.
    """
    if pin and sw & 0xFFF0 == SW.VERIFY_FAILED:
        tries = sw & 0x0F
        return (PIN_LOCKED, message(PIN_LOCKED)) if tries == 0 else (
            PIN_WRONG, pin_wrong_message(tries))
    if pin and sw == SW.AUTH_BLOCKED:
        return PIN_LOCKED, message(PIN_LOCKED)
    code = PUBLIC_SW.get(sw) or PUBLIC_SW1.get(sw >> 8) or -sw
    if sw & 0xFFF0 == SW.VERIFY_FAILED and code not in BY_CODE:
        return code, f"认证失败，剩余可尝试次数{sw & 0x0F}次"
    return code, message(code)


#: What a PC/SC part 10 PIN-pad reader answers by itself to FEATURE_VERIFY_PIN_DIRECT /
#: FEATURE_MODIFY_PIN_DIRECT, nothing sent to the card: 6400 timeout and 6401 cancel (libccid
#: ``CCID_Receive``: CCID bError F0 / EF), 6402 the new PIN and its confirmation differ, 6403
#: a PIN shorter or longer than wPINMaxExtraDigit allows, 6B80 the structure refused.
PIN_PAD_ANSWERS: dict[int, int] = {
    0x6400: PIN_TIMEOUT,
    0x6401: PIN_CANCELLED,
    0x6402: PIN_DIFFERENT,
    0x6403: PIN_LENGTH,
    0x6B80: UNSUPPORTED,
}


def for_pin_pad(sw: int) -> tuple[int, str]:
    """(code, text) for a PIN-pad reader's answer: its own 64xx/6B80, else the card's SW
    by the PIN-command rules (63Cx −51, 63C0/6983 −52)."""
    code = PIN_PAD_ANSWERS.get(sw)
    if code is None:
        return for_sw(sw, pin=True)
    if code == UNSUPPORTED:
        return code, f"{message(code)}（读卡器不接受密码键盘参数，{sw:04X}）"
    return code, message(code)


class NationalError(SbcardError):
    """A failure with its national code; ``str`` is the Chinese text for pOutInfo."""

    text: str

    def __init__(self, code: int, text: str | None = None) -> None:
        self.code = code
        self.text = text or message(code)
        self.exit_code = exit_code_for(code)
        super().__init__(f"{code} {self.text}")


def exit_code_for(code: int) -> ExitCode:
    """The CLI exit code (docs/exit-codes.md) of a national code, for ``sbcard call``/``read``."""
    if code == OK:
        return ExitCode.OK
    if code in (NO_CARD, NO_ANSWER, READER_LINK, NOT_CONNECTED, NOT_POWERED):
        return ExitCode.READER
    if code in (PIN_WRONG,):
        return ExitCode.PIN_WRONG
    if code in (PIN_LOCKED, -0x6983, -0x9303):
        return ExitCode.BLOCKED
    if code in HSM_FALLBACK or code in (PIN_CANCELLED, HSM_NOT_NEEDED):
        return ExitCode.REFUSED
    if code in (INTERNAL_AUTH, HSM_INTERNAL_AUTH, CARD_MISMATCH):
        return ExitCode.MISMATCH
    if code in (CARD_TYPE, BAD_PARAMETER, BAD_DATA, BAD_CHARACTER, DATA_LENGTH, PIN_LENGTH,
                PIN_DIFFERENT):
        return ExitCode.BAD_INPUT
    if code <= -0x6000:
        return ExitCode.CARD_ERROR
    return ExitCode.FAILURE


def for_error(exc: BaseException, *, pin: bool = False) -> tuple[int, str]:
    """(code, text) for any error a national function meets; never raises."""
    if isinstance(exc, NationalError):
        return exc.code, exc.text
    if isinstance(exc, CardError):
        return for_sw(exc.sw, pin=pin)
    if isinstance(exc, CardRemovedError):
        return NO_ANSWER, message(NO_ANSWER)
    if isinstance(exc, NoCardError):
        return NO_CARD, message(NO_CARD)
    if isinstance(exc, TransportError):
        return READER_LINK, message(READER_LINK)
    if isinstance(exc, BadInputError):
        return BAD_DATA, message(BAD_DATA)
    return UNKNOWN, message(UNKNOWN)
