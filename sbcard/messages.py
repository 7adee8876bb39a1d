"""Operator-facing messages, in Chinese and English, in one place (the message catalogue).

Counter staff read Chinese first; integrators and logs want English. Each message here has
both; ``sbcard --lang zh|en|both`` (env ``SBCARD_LANG``; default from the locale: ``zh`` for
a Chinese locale, ``en`` for an English one, ``both`` otherwise) picks what is shown. An
error raised with a ``Text`` keeps the English as ``str(err)`` (logs, tests) and the Chinese
as ``err.text.zh``; anything without a Chinese text is shown in English.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

LANGS = ("zh", "en", "both")
LANG_ENV = "SBCARD_LANG"


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def __call__(self, **values: object) -> Text:
        """The message with its ``{placeholders}`` filled in, in both languages."""
        return Text(self.zh.format(**values), self.en.format(**values))

    def render(self, lang: str) -> str:
        if lang == "zh":
            return self.zh
        if lang == "en":
            return self.en
        return f"{self.zh} — {self.en}"

    def __str__(self) -> str:
        return self.en


def default_lang(environ: Mapping[str, str] = os.environ) -> str:
    """``SBCARD_LANG`` if set, else from the locale (LC_ALL, LC_MESSAGES, LANG)."""
    chosen = environ.get(LANG_ENV, "").strip().lower()
    if chosen in LANGS:
        return chosen
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(var, "").lower()
        if value:
            if value.startswith("zh"):
                return "zh"
            if value.startswith("en"):
                return "en"
            return "both"
    return "both"


def render(message: object, lang: str) -> str:
    """A ``Text`` in ``lang``; an error carrying one likewise; anything else as it is."""
    text = getattr(message, "text", message)
    if isinstance(text, Text):
        return text.render(lang)
    return str(message)


# -- the catalogue ------------------------------------------------------------------------
# PINs (ops.pin, cli.cmd_pin, cli.cmd_activate)
LAST_TRY = Text("仅剩1次密码尝试机会，输错将锁卡；{what_zh}需加 --force",
                "only 1 PIN try left: a wrong PIN would block the card; {what} only with "
                "--force")
TRIES_UNKNOWN = Text("卡片未报告剩余密码次数，{what_zh}可能消耗一次；确需继续请加 --force",
                     "the card does not report how many PIN tries are left; {what} could "
                     "spend one: add --force to go ahead")
TRIVIAL_PIN = Text("新密码过于简单（如 123456、000000、888888），请另选",
                   "the new PIN is too easy to guess (e.g. 123456, 000000, 888888); "
                   "choose another")
SAME_PIN = Text("新密码与原密码相同", "the new PIN is the same as the old one")
PIN_TRIES_LEFT = Text("剩余密码次数: {n}", "PIN tries left: {n}")
PIN_CORRECT = Text("密码正确", "PIN correct")
PIN_BLOCKED = Text("密码已锁定", "PIN blocked")
PIN_CHANGED = Text("密码已修改", "PIN changed")
PIN_PIPED = Text("标准输入不是终端：密码请用 --pin-stdin 每行一个传入",
                 "stdin is not a terminal: give PINs with --pin-stdin, one per line")
# the link to the card (transport.pcsc)
NO_PCSCD = Text("读卡服务 pcscd 未运行：请启动（sudo systemctl start pcscd.socket 或 pcscd）",
                "pcscd is not running: start it (`sudo systemctl start pcscd.socket`, or "
                "`pcscd`)")
NO_READER = Text("未找到读卡器：请插入读卡器（是否已安装 libccid？）",
                 "no card reader found: plug one in (is libccid installed?)")
# activation (ops.activate)
CARD_EXPIRED = Text("卡片已于 {date} 过期：请补换新卡",
                    "the card expired on {date}: issue a new card")
HOLDER_NEEDS_KEYS = Text("无法核对持卡人：EF06 需要 RKSSSE 认证；请提供密钥来源"
                         "（--keys/--psam/--hsm-command）",
                         "cannot check the holder: EF06 needs RKSSSE; give a key source "
                         "(--keys/--psam/--hsm-command)")
# the photo (cli.cmd_read)
PHOTO_NEEDS_KEYS = Text("未读取照片：照片需要 RKSSSE 认证的密钥来源（--keys、--psam 或 "
                        "--hsm-command）",
                        "not read: the photo needs a key source for RKSSSE (--keys, --psam or "
                        "--hsm-command)")
NO_PHOTO = Text("卡内无照片，未写文件", "this card holds no photo; no file written")
# audit log lines (cli.cmd_activate audit)
AUDIT_LINE = Text("#{id} {at} 操作员 {operator} 卡号 {card_no} 步骤 {step}: {outcome}",
                  "#{id} {at} operator {operator} card {card_no} step {step}: {outcome}")
#: what an activation's outcome words mean, for the audit listing
OUTCOMES = {"activated": "已启用", "failed": "失败", "refused": "已拒绝", "blocked": "已锁定",
            "identity mismatch": "身份不符", "initial PIN rejected": "初始密码被拒",
            "card removed": "卡片被拔出"}
#: "verifying" etc. in LAST_TRY / TRIES_UNKNOWN
ACTIONS_ZH = {"verifying": "校验密码", "changing the PIN": "修改密码",
              "verifying the initial PIN": "校验初始密码"}
#: exit code → what kind of failure, for an error with no Chinese text of its own
EXIT_ZH = {1: "操作失败", 2: "命令行用法错误", 3: "输入有误", 4: "读卡器或卡片连接失败",
           5: "卡片返回错误状态", 6: "密码错误", 7: "已锁定", 8: "为安全起见已拒绝",
           9: "数据不一致"}
