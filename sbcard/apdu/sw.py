"""The one status-word table (ISO 7816-4 plus the MOHRSS card's own) and the card error type.

Patterns use ``?`` for a free hex digit, so ``63C?`` covers 63C0..63CF. The first matching
row wins, so specific rows come before general ones. Meanings are given in Chinese and English
because both are read at the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from sbcard.errors import BadInputError, ExitCode, SbcardError
from sbcard.hexutil import hex_mask_matches


class SwKind(Enum):
    """What a caller should do with a status word."""

    OK = "ok"
    WARNING = "warning"
    MORE_DATA = "more_data"        # 61xx: GET RESPONSE
    WRONG_LE = "wrong_le"          # 6Cxx: resend with Le = xx
    AUTH_FAILED = "auth_failed"    # 63Cx: x tries left
    BLOCKED = "blocked"            # PIN/key/application/card blocked
    SECURITY = "security"          # access conditions not met
    NOT_FOUND = "not_found"
    ERROR = "error"


class SW(IntEnum):
    """Status words by name, for code that answers or tests them (meanings: ``SW_TABLE``).

    The ``xx`` forms (61xx, 63Cx, 6Cxx) are bases: ``SW.VERIFY_FAILED | tries``.
    """

    OK = 0x9000
    MORE_DATA = 0x6100                     # | bytes still available
    END_OF_FILE = 0x6282                   # fewer bytes than Le
    FILE_INVALIDATED = 0x6283              # selected file invalidated
    VERIFY_FAILED = 0x63C0                 # | tries left
    WRONG_LENGTH = 0x6700
    NOT_ACCEPTED = 0x6901                  # command not accepted (purse state, part 5 §7)
    INCOMPATIBLE_FILE = 0x6981
    SECURITY_NOT_SATISFIED = 0x6982
    AUTH_BLOCKED = 0x6983
    NO_CHALLENGE = 0x6984                  # referenced data invalidated
    CONDITIONS_NOT_SATISFIED = 0x6985
    NO_CURRENT_EF = 0x6986
    SM_DATA_MISSING = 0x6987
    SM_DATA_INCORRECT = 0x6988
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81        # also: card blocked
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    LC_INCONSISTENT = 0x6A85
    WRONG_P1P2 = 0x6A86
    KEY_NOT_FOUND = 0x6A88                 # referenced data (key) not found
    WRONG_OFFSET = 0x6B00
    WRONG_LE = 0x6C00                      # | the right Le
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_DIAGNOSIS = 0x6F00
    MAC_INVALID = 0x9302
    APPLICATION_BLOCKED = 0x9303
    INSUFFICIENT_FUNDS = 0x9401            # purse: balance too low (part 5 §7)
    COUNTER_MAX = 0x9402                   # purse: transaction counter at its maximum
    KEY_INDEX_UNSUPPORTED = 0x9403
    MAC_UNAVAILABLE = 0x9406               # purse: no transaction proof for that number


@dataclass(frozen=True)
class SwEntry:
    pattern: str
    kind: SwKind
    zh: str
    en: str

    def matches(self, sw: int) -> bool:
        return sw_matches(self.pattern, sw)


def sw_matches(mask: str, sw: int) -> bool:
    """Whether ``sw`` fits a status-word mask such as ``63C?`` (``?``: any hex digit)."""
    return hex_mask_matches(mask, f"{sw:04X}")


def parse_sw_mask(text: str) -> str:
    """A user's status-word mask (``9000``, ``63C?``, ``63cx``) in the table's form."""
    mask = text.strip().upper().replace("X", "?")
    if len(mask) != 4 or any(c not in "0123456789ABCDEF?" for c in mask):
        raise BadInputError(f"{text!r} is not a status word mask like 9000 or 63C?")
    return mask


SW_TABLE: tuple[SwEntry, ...] = (
    SwEntry("9000", SwKind.OK, "成功", "success"),
    SwEntry("61??", SwKind.MORE_DATA, "还有数据可取", "response bytes still available"),
    SwEntry("6281", SwKind.WARNING, "返回数据可能有误", "part of returned data may be corrupted"),
    SwEntry("6282", SwKind.WARNING, "文件结束前已到记录尾", "end of file reached before Le bytes"),
    SwEntry("6283", SwKind.WARNING, "选择的文件无效", "selected file invalidated"),
    SwEntry("62??", SwKind.WARNING, "警告，非易失存储器未变", "warning: non-volatile memory unchanged"),
    SwEntry("63C?", SwKind.AUTH_FAILED, "认证失败", "verification failed"),
    SwEntry("63??", SwKind.WARNING, "警告，非易失存储器已变", "warning: non-volatile memory changed"),
    SwEntry("6581", SwKind.ERROR, "存储器错误", "memory failure"),
    SwEntry("65??", SwKind.ERROR, "非易失存储器已变", "error: non-volatile memory changed"),
    SwEntry("6700", SwKind.ERROR, "长度错误", "wrong length"),
    SwEntry("6901", SwKind.ERROR, "命令不被接受（状态无效）", "command not accepted (invalid state)"),
    SwEntry("6981", SwKind.ERROR, "命令与文件结构不相容", "command incompatible with file structure"),
    SwEntry("6982", SwKind.SECURITY, "不满足安全状态", "security status not satisfied"),
    SwEntry("6983", SwKind.BLOCKED, "认证方法（密码/密钥）锁定", "authentication method blocked"),
    SwEntry("6984", SwKind.ERROR, "引用数据无效（无随机数）", "referenced data invalidated (no challenge)"),
    SwEntry("6985", SwKind.ERROR, "使用条件不满足", "conditions of use not satisfied"),
    SwEntry("6986", SwKind.ERROR, "不满足命令执行条件（无当前EF）", "command not allowed (no current EF)"),
    SwEntry("6987", SwKind.ERROR, "安全报文数据项丢失", "expected secure messaging data objects missing"),
    SwEntry("6988", SwKind.ERROR, "安全报文数据项不正确（MAC错）", "incorrect secure messaging data (MAC)"),
    SwEntry("6A80", SwKind.ERROR, "数据域参数不正确", "incorrect parameters in the data field"),
    SwEntry("6A81", SwKind.BLOCKED, "功能不支持或卡已锁定", "function not supported (or card blocked)"),
    SwEntry("6A82", SwKind.NOT_FOUND, "文件未找到", "file not found"),
    SwEntry("6A83", SwKind.NOT_FOUND, "记录未找到", "record not found"),
    SwEntry("6A84", SwKind.ERROR, "文件中存储空间不够", "not enough memory space in the file"),
    SwEntry("6A85", SwKind.ERROR, "Lc与TLV结构不一致", "Lc inconsistent with TLV structure"),
    SwEntry("6A86", SwKind.ERROR, "参数P1、P2不正确", "incorrect parameters P1-P2"),
    SwEntry("6A87", SwKind.ERROR, "Lc与P1-P2不一致", "Lc inconsistent with P1-P2"),
    SwEntry("6A88", SwKind.NOT_FOUND, "引用数据（密钥）未找到", "referenced data (key) not found"),
    SwEntry("6B00", SwKind.ERROR, "参数错误（偏移量超出EF）", "wrong parameters (offset outside the EF)"),
    SwEntry("6C??", SwKind.WRONG_LE, "Le长度错误", "wrong Le field"),
    SwEntry("6D00", SwKind.ERROR, "命令不存在", "instruction code not supported"),
    SwEntry("6E00", SwKind.ERROR, "CLA错误", "class not supported"),
    SwEntry("6F00", SwKind.ERROR, "数据无效（无精确诊断）", "no precise diagnosis"),
    SwEntry("9302", SwKind.ERROR, "MAC无效", "MAC invalid"),
    SwEntry("9303", SwKind.BLOCKED, "应用已被永久锁定", "application permanently blocked"),
    SwEntry("9401", SwKind.ERROR, "金额不足", "insufficient balance"),
    SwEntry("9402", SwKind.ERROR, "交易计数器到达最大值", "transaction counter at maximum"),
    SwEntry("9403", SwKind.NOT_FOUND, "密钥索引不支持", "key index not supported"),
    SwEntry("9406", SwKind.ERROR, "所需MAC不可用", "required MAC not available"),
)

_UNKNOWN = SwEntry("????", SwKind.ERROR, "未知状态字", "unknown status word")


def lookup_sw(sw: int) -> SwEntry:
    """The table row for ``sw`` (an unknown SW gets a generic error row)."""
    for entry in SW_TABLE:
        if entry.matches(sw):
            return entry
    return _UNKNOWN


def describe_sw(sw: int) -> str:
    """``'63C2 认证失败 verification failed (2 tries left)'`` — the SW in words."""
    entry = lookup_sw(sw)
    text = f"{sw:04X} {entry.zh} {entry.en}"
    low = sw & 0xFF
    if entry.kind is SwKind.AUTH_FAILED:
        text += f" ({low & 0x0F} tries left / 剩余{low & 0x0F}次)"
    elif entry.kind is SwKind.MORE_DATA:
        text += f" ({low or 256} bytes)"
    elif entry.kind is SwKind.WRONG_LE:
        text += f" (Le should be {low:02X})"
    return text


def tries_left(sw: int) -> int | None:
    """Tries left encoded in ``63Cx``; 0 for ``6983`` (blocked); None otherwise."""
    if lookup_sw(sw).kind is SwKind.AUTH_FAILED:
        return sw & 0x0F
    if sw == 0x6983:
        return 0
    return None


class CardError(SbcardError):
    """The card answered a command with a status word other than the one expected."""

    exit_code = ExitCode.CARD_ERROR

    def __init__(self, sw: int, command: str = "", data: bytes = b"") -> None:
        self.sw = sw
        self.command = command
        self.data = data
        self.entry = lookup_sw(sw)
        where = f"{command}: " if command else ""
        super().__init__(f"{where}card answered {describe_sw(sw)}")

    @property
    def tries_left(self) -> int | None:
        return tries_left(self.sw)

    @classmethod
    def for_sw(cls, sw: int, command: str = "", data: bytes = b"") -> CardError:
        """The most specific subclass for ``sw``, so callers can catch what they handle."""
        kind = lookup_sw(sw).kind
        sub = {
            SwKind.AUTH_FAILED: AuthFailedError,
            SwKind.BLOCKED: BlockedError,
            SwKind.SECURITY: SecurityStatusError,
            SwKind.NOT_FOUND: NotFoundError,
        }.get(kind, cls)
        return sub(sw, command, data)


class AuthFailedError(CardError):
    """63Cx: a PIN or cryptogram was wrong; ``tries_left`` says how many remain."""

    exit_code = ExitCode.PIN_WRONG


class BlockedError(CardError):
    """6983 / 9303 / 6A81: a PIN, key, the application or the whole card is blocked."""

    exit_code = ExitCode.BLOCKED


class SecurityStatusError(CardError):
    """6982: the file or command needs an authentication that has not been done."""


class NotFoundError(CardError):
    """6A82 / 6A83 / 6A88: file, record or key not on this card."""
