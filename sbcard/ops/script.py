"""APDU scripts: a superset of pcsc-tools ``scriptor`` syntax with expectations and named ops.

Every scriptor script runs unchanged: hex APDU lines (spaced or not), ``reset``, ``exit``,
``#`` comments, ``\\`` line continuation; like scriptor, a plain APDU line accepts any status
word and the link does no T=0 GET RESPONSE unless the script says ``option t0 on``.

On top (docs/apdu-scripts.md has the full reference)::

    set SSSE 7378312E73682EC9E7BBE1B1A3D5CF          # variables: ${SSSE}, --var k=v, CSV row;
                                                     # ${NAME:-default} when unset or empty
    00A404000F ${SSSE} 00   expect 9000 data ^6F     # SW mask (? = any digit), data regex
    0084000008              expect 9000 capture R    # response data → ${R}
    include common.apdu                              # relative to this file
    option t0 on                                     # 61xx/6Cxx handled by the link
    select-ssse                                      # named operations (card model, crypto)
    authenticate 04                                  # EXTERNAL AUTH with card key 04 (key source)
    write-element name ${name}                       # a data element, encoded by the card model
    read-element card_no expect ${card_no}           # read back, decode, compare
    reload-pin ${pin}                                # set the PIN (PUK + STK secure messaging)
    sm2-issue ${admin_pin} ${pki_user_pin}           # 3.0: SM2 key pair + certificate (--ca)
    verify-pin ${pin}                                # VERIFY, refusing at one try left
    echo personalised ${card_no}

Variables whose name contains "pin" or "key" are secret, and so is a variable ``set`` from a
secret: masked in --dry-run output, in echo and in error messages, inside raw APDU lines too
(``80DC0101 08 ${key}`` shows ``80DC010108****…``), and the trace and dump layers under the
session are told to mask their bytes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sbcard.apdu.channel import ApduChannel
from sbcard.apdu.command import CommandApdu
from sbcard.apdu.redact import mask_command
from sbcard.apdu.sw import describe_sw, parse_sw_mask, sw_matches
from sbcard.apdu.t0 import T0Layer
from sbcard.card.profiles import CardProfile
from sbcard.errors import BadInputError, ExitCode, SbcardError
from sbcard.hexutil import parse_hex, to_hex
from sbcard.keys.base import CardContext, KeySource
from sbcard.ops.read import read_context
from sbcard.transport.base import TransportLayer

if TYPE_CHECKING:                  # sm2-issue only: the CA's crypto is not loaded for scripts
    from sbcard.ops.pki_issue import CertificateAuthority

KEYWORDS = ("expect", "data", "capture")
NAMED_OPS = {
    "select-ssse": (0, 0),
    "authenticate": (1, 1),
    "write-element": (2, 3),
    "read-element": (1, 3),
    "reload-pin": (1, 1),
    "verify-pin": (1, 1),
    "sm2-issue": (0, 2),
    "echo": (0, 999),
}
CONTROL = {"reset": (0, 0), "exit": (0, 0), "set": (2, 999), "option": (2, 2),
           "include": (1, 1)}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MAX_INCLUDE_DEPTH = 8


class ScriptFailed(SbcardError):
    """An expectation did not hold; the message names file:line, the APDU and the SW."""

    exit_code = ExitCode.CARD_ERROR


def is_secret(name: str) -> bool:
    low = name.lower()
    return "pin" in low or "key" in low


@dataclass(frozen=True)
class Statement:
    file: str
    line: int
    verb: str                       # "apdu", a CONTROL word or a NAMED_OPS word
    args: tuple[str, ...]           # unexpanded tokens
    expect_sw: str | None = None
    expect_data: str | None = None
    capture: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Script:
    statements: list[Statement]
    source: str


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) with comments removed and ``\\`` continuations joined."""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        hash_at = next((i for i, ch in enumerate(line)
                        if ch == "#" and (i == 0 or line[i - 1].isspace())), None)
        if hash_at is not None:
            line = line[:hash_at]
        line = line.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            yield start, full
    if pending.strip():
        yield start, pending.strip()


def parse_script(path: str | Path, *, _depth: int = 0,
                 _text: str | None = None) -> Script:
    """Parse a script file (and its includes); syntax errors name file:line."""
    p = Path(path)
    try:
        text = p.read_text("utf-8") if _text is None else _text
    except FileNotFoundError:
        raise BadInputError(f"script {p}: no such file") from None
    except UnicodeDecodeError as exc:
        raise BadInputError(f"script {p}: not UTF-8 text ({exc.reason})") from None
    statements: list[Statement] = []
    for number, line in _logical_lines(text):
        where = f"{p}:{number}"
        try:
            tokens = shlex.split(line, comments=False, posix=True)
        except ValueError as exc:
            raise BadInputError(f"{where}: {exc}") from None
        verb = tokens[0].lower()
        if verb in CONTROL or verb in NAMED_OPS:
            lo, hi = CONTROL.get(verb) or NAMED_OPS[verb]
            args = tokens[1:]
            expect = None
            if verb == "read-element" and len(args) == 3:
                if args[1].lower() != "expect":
                    raise BadInputError(f"{where}: read-element KEY [expect VALUE]")
                expect, args = args[2], args[:1]
            if not lo <= len(args) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                raise BadInputError(f"{where}: {verb} takes {want} argument(s), got {len(args)}")
            if verb == "include":
                if _depth >= MAX_INCLUDE_DEPTH:
                    raise BadInputError(f"{where}: includes nested too deep")
                target = (p.parent / args[0]) if not Path(args[0]).is_absolute() else Path(
                    args[0])
                statements.extend(parse_script(target, _depth=_depth + 1).statements)
                continue
            if verb == "option" and (args[0].lower() != "t0" or args[1].lower() not in
                                     ("on", "off")):
                raise BadInputError(f"{where}: the only option is `option t0 on|off`")
            if verb == "set" and (args[1:2] != ["="] and len(args) < 2):
                raise BadInputError(f"{where}: set NAME VALUE")
            statements.append(Statement(str(p), number, verb, tuple(args), expect_data=expect))
            continue
        statements.append(_parse_apdu(tokens, str(p), number))
    return Script(statements, str(p))


def _parse_apdu(tokens: list[str], file: str, number: int) -> Statement:
    where = f"{file}:{number}"
    hex_tokens: list[str] = []
    i = 0
    while i < len(tokens) and tokens[i].lower() not in KEYWORDS:
        hex_tokens.append(tokens[i])
        i += 1
    expect_sw = expect_data = capture = None
    while i < len(tokens):
        word = tokens[i].lower()
        if i + 1 >= len(tokens):
            raise BadInputError(f"{where}: `{word}` needs a value")
        value = tokens[i + 1]
        if word == "expect":
            try:
                expect_sw = parse_sw_mask(value)
            except BadInputError as exc:
                raise BadInputError(f"{where}: {exc}") from None
        elif word == "data":
            try:
                re.compile(value)
            except re.error as exc:
                raise BadInputError(f"{where}: bad data pattern: {exc}") from None
            expect_data = value
        elif word == "capture":
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
                raise BadInputError(f"{where}: capture needs a variable name")
            capture = value
        i += 2
    if not hex_tokens:
        raise BadInputError(f"{where}: expected an APDU or a command")
    first = hex_tokens[0]
    if "${" not in first and any(c not in "0123456789abcdefABCDEF" for c in first):
        words = ", ".join([*CONTROL, *NAMED_OPS])
        raise BadInputError(f"{where}: unknown command {first!r} (an APDU in hex, or one of: "
                            f"{words})")
    joined = "".join(hex_tokens)
    if not _VAR.search(joined):  # check what can be checked before any card is touched
        try:
            CommandApdu.parse(parse_hex(joined, "APDU"))
        except BadInputError as exc:
            raise BadInputError(f"{where}: {exc}") from None
    return Statement(file, number, "apdu", tuple(hex_tokens), expect_sw, expect_data, capture)


@dataclass
class StepResult:
    where: str
    text: str                       # masked, for display
    sw: int | None = None
    data_hex: str = ""


#: A named operation: (runner, statement, expanded arguments) → a note to echo, or None.
Operation = Callable[["ScriptRunner", Statement, list[str]], "str | None"]


class OperationRegistry(dict[str, Operation]):
    """Named operations by verb. The syntax (``NAMED_OPS``: verbs and argument counts) is
    the parser's; the implementations are registered from ``sbcard.ops.script_ops``, which
    builds on this module (so this module never imports it)."""

    def register(self, verb: str) -> Callable[[Operation], Operation]:
        if verb not in NAMED_OPS:
            raise ValueError(f"{verb!r} is not a named operation of the script syntax")

        def add(op: Operation) -> Operation:
            self[verb] = op
            return op
        return add


@dataclass
class ScriptContext:
    """What named operations need besides the channel; filled by the caller."""

    keys: KeySource | None = None
    profile: CardProfile | None = None
    ca: CertificateAuthority | None = None        # sm2-issue
    variables: dict[str, str] = field(default_factory=dict)
    #: The named operations this run may use (``sbcard.ops.script_ops.OPERATIONS``);
    #: empty: plain APDU scripts only.
    operations: Mapping[str, Operation] = field(default_factory=OperationRegistry)


class ScriptRunner:
    def __init__(self, channel: ApduChannel | None, context: ScriptContext | None = None,
                 *, echo: Callable[[str], None] | None = None) -> None:
        self.channel = channel
        self.ctx = context or ScriptContext()
        self.vars: dict[str, str] = dict(self.ctx.variables)
        #: names whose value is secret: by name (pin, key), or set from a secret (set x ${pin})
        self.secret_names: set[str] = {n for n in self.vars if is_secret(n)}
        self.echo = echo or (lambda _line: None)
        self.results: list[StepResult] = []
        self._card_ctx: CardContext | None = None
        if channel is not None:
            self._t0(False)   # scriptor semantics until the script says `option t0 on`

    # -- variables --------------------------------------------------------------------------
    def expand(self, token: str, st: Statement, *, masked: bool = False,
               hex_mask: bool = False) -> str:
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name not in self.vars or (default is not None and self.vars[name] == ""):
                if default is None:
                    raise BadInputError(f"{st.where}: variable ${{{name}}} is not set")
                value = default
            else:
                value = self.vars[name]
            if masked and self._secret(name):
                return "*" * len(value) if hex_mask else "******"
            return value
        return _VAR.sub(repl, token)

    def _secret(self, name: str) -> bool:
        return name in self.secret_names or is_secret(name)

    def _uses_secret(self, tokens: tuple[str, ...] | list[str]) -> bool:
        return any(self._secret(m.group(1)) for t in tokens for m in _VAR.finditer(t))

    def _set(self, st: Statement) -> None:
        """``set NAME VALUE…``: a value made from a secret is secret too (echo masks it)."""
        parts = [a for a in st.args[1:] if a != "="]
        name = st.args[0]
        self.vars[name] = " ".join(self.expand(a, st) for a in parts)
        if self._uses_secret(parts) or is_secret(name):
            self.secret_names.add(name)
            self._hide(self.vars[name])
        else:
            self.secret_names.discard(name)

    def _hide(self, value: str) -> None:
        """Tell the trace and dump layers under this session to mask a secret's bytes."""
        if self.channel is None or not value:
            return
        try:
            data = parse_hex(value, "secret")
        except BadInputError:
            data = value.encode("utf-8")
        t = self.channel.transport
        while isinstance(t, TransportLayer):
            hide = getattr(t, "hide", None)
            if hide is not None:
                hide(data)
            t = t.inner

    def shown(self, st: Statement) -> str:
        """The statement with variables filled in and secrets masked."""
        if st.verb == "apdu":
            text = self._apdu_text(st)
        else:
            text = " ".join([st.verb, *(self.expand(a, st, masked=True) for a in st.args)])
            if st.verb in ("reload-pin", "verify-pin", "sm2-issue") and st.args:
                text = f"{st.verb} ******"
        extra = []
        if st.verb == "read-element" and st.expect_data is not None:
            extra.append(f"expect {self.expand(st.expect_data, st, masked=True)}")
        if st.expect_sw:
            extra.append(f"expect {st.expect_sw}")
        if st.expect_data and st.verb == "apdu":
            extra.append(f"data {st.expect_data}")
        if st.capture:
            extra.append(f"capture {st.capture}")
        return " ".join([text, *extra])

    def precheck(self, script: Script) -> None:
        """Before the first APDU: every APDU line whose variables are known now (given, not
        ``set`` or captured later) is expanded and checked (hex, Lc, length, case)."""
        later = {st.args[0] for st in script.statements if st.verb == "set" and st.args}
        later |= {st.capture for st in script.statements if st.capture}
        for st in script.statements:
            if st.verb != "apdu":
                continue
            names = {m.group(1) for t in st.args for m in _VAR.finditer(t)}
            if not names or names & later:
                continue
            raw = parse_hex("".join(self.expand(t, st) for t in st.args),
                            f"{st.where}: APDU")
            try:
                CommandApdu.parse(raw)
            except BadInputError as exc:
                raise BadInputError(f"{st.where}: {self._apdu_text(st)}: {exc}; no APDU was "
                                    "sent") from None

    def _apdu_text(self, st: Statement) -> str:
        """An APDU line as shown: PIN blocks masked, and a secret variable's bytes too."""
        if self._uses_secret(st.args):          # e.g. 80DC0101 08 ${key}
            return "".join(self.expand(t, st, masked=True, hex_mask=True)
                           for t in st.args).replace(" ", "").upper()
        raw = "".join(self.expand(t, st) for t in st.args)
        try:
            return mask_command(parse_hex(raw, "APDU"))
        except BadInputError:
            return raw

    # -- running ----------------------------------------------------------------------------
    def dry_run(self, script: Script) -> list[str]:
        """Resolve every statement without a card (captured variables read as ``<NAME>``)."""
        lines = []
        for st in script.statements:
            if st.verb == "set":
                self._set(st)
            if st.capture:
                self.vars[st.capture] = f"<{st.capture}>"
            lines.append(f"{st.where}: {self.shown(st)}")
            if st.verb == "exit":
                break
        return lines

    def run(self, script: Script,
            on_step: Callable[[Statement], None] | None = None) -> list[StepResult]:
        """Run every statement; ``on_step`` hears each one before it runs (journals)."""
        if self.channel is None:
            raise BadInputError("no card session to run the script on")
        self.precheck(script)
        for name in self.secret_names:
            self._hide(self.vars[name])
        for st in script.statements:
            if on_step is not None:
                on_step(st)
            if not self.step(st):
                break
        return self.results

    @property
    def card(self) -> ApduChannel:
        """The session's channel (``run`` refuses to start without one)."""
        if self.channel is None:
            raise BadInputError("no card session to run the script on")
        return self.channel

    def step(self, st: Statement) -> bool:
        verb = st.verb
        if verb == "exit":
            return False
        if verb == "set":
            self._set(st)
            return True
        if verb == "option":
            self._t0(st.args[1].lower() == "on")
            return True
        if verb == "reset":
            atr = self.card.transport.reset()
            self._card_ctx = None
            self.echo(f"> reset\n< ATR {to_hex(atr)}")
            return True
        if verb == "apdu":
            self._apdu(st)
            return True
        self._named(st)
        return True

    def _t0(self, on: bool) -> None:
        t = self.card.transport
        while isinstance(t, TransportLayer):
            if isinstance(t, T0Layer):
                t.enabled = on
                return
            t = t.inner
        if on:
            raise BadInputError("this session has no T=0 layer to switch on")

    def _apdu(self, st: Statement) -> None:
        raw = parse_hex("".join(self.expand(t, st) for t in st.args), f"{st.where}: APDU")
        try:
            cmd = CommandApdu.parse(raw)
        except BadInputError as exc:
            raise BadInputError(f"{st.where}: {exc}") from None
        for m in (m for t in st.args for m in _VAR.finditer(t)):
            if self._secret(m.group(1)) and m.group(1) in self.vars:
                self._hide(self.vars[m.group(1)])   # before the trace sees the APDU
        resp = self.card.send(cmd)
        shown = self._apdu_text(st)
        self.echo(f"> {shown}\n< {to_hex(resp.data)}{' ' if resp.data else ''}{resp.sw:04X} "
                  f": {describe_sw(resp.sw)[5:]}")
        self.results.append(StepResult(st.where, shown, resp.sw, to_hex(resp.data)))
        if st.expect_sw and not sw_matches(st.expect_sw, resp.sw):
            raise ScriptFailed(f"{st.where}: {shown} → {describe_sw(resp.sw)} "
                               f"(expected {st.expect_sw})")
        if st.expect_data and not re.search(st.expect_data, to_hex(resp.data)):
            raise ScriptFailed(f"{st.where}: {shown} → response data does not match "
                               f"/{st.expect_data}/")
        if st.capture:
            self.vars[st.capture] = to_hex(resp.data)

    # -- named operations ---------------------------------------------------------------------
    def _card_context(self) -> CardContext:
        if self._card_ctx is None:
            self._card_ctx = read_context(self.card)
        return self._card_ctx

    def _keys(self, st: Statement) -> KeySource:
        if self.ctx.keys is None:
            raise BadInputError(f"{st.where}: {st.verb} needs a key source "
                                "(--keys, --psam or --hsm-command)")
        return self.ctx.keys

    def _named(self, st: Statement) -> None:
        op = self.ctx.operations.get(st.verb)
        if op is None:
            raise BadInputError(f"{st.where}: {st.verb}: no implementation of this named "
                                "operation (ScriptContext.operations: use "
                                "sbcard.ops.script_ops.OPERATIONS)")
        args = [self.expand(a, st) for a in st.args]
        shown = self.shown(st)
        self.echo(f"> {shown}")
        try:
            note = op(self, st, args)
        except SbcardError as exc:
            text = str(exc)
            if not text.startswith(st.where):       # say where, keep the error's type/code
                exc.args = (f"{st.where}: {shown}: {text}", *exc.args[1:])
            raise
        self.results.append(StepResult(st.where, shown))
        if note:
            self.echo(f"< {note}")


