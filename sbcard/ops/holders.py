"""The holders CSV of a personalisation batch: read it, and validate every row before any card.

Columns are the data-element keys of ``sbcard read --json`` (ssn, name, sex, ethnicity,
birthplace, birth_date, card_no, card_type, issue_date, expiry_date, optional spec_version) and
an optional ``pin`` (else one initial PIN for the batch); the Chinese labels of the same
elements (姓名, 社会保障号码, 性别, 民族, 出生日期 …) are accepted as headers too. Every problem of
every row is reported at once, named as a spreadsheet shows it (header = row 1, column
letter and the header as written), so a card bureau fixes the file in one go. Unlike
reading a card (which warns), personalising refuses bad check characters: a new card must
be right.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sbcard.card import codes
from sbcard.card.codecs import encode_gbk, parse_date, split_name
from sbcard.card.elements import BY_KEY
from sbcard.card.filesystem import PIN_MAX_DIGITS, PIN_MIN_DIGITS
from sbcard.card.identity import check_card_no, check_region_code, check_ssn
from sbcard.errors import BadInputError
from sbcard.hexutil import is_ascii_digits

REQUIRED = ("ssn", "name", "sex", "ethnicity", "birthplace", "birth_date", "card_no",
            "card_type", "issue_date", "expiry_date")
OPTIONAL = ("spec_version", "pin", "reissue")
MAX_ERRORS_SHOWN = 50
MAX_PROBLEM_LEN = 160              # one problem, one short line, whatever the field held
_FORMULA_START = ("=", "+", "-", "@")
_TEXT_FIELDS = ("name", "spec_version")
#: Chinese headers beyond the data elements' own labels (which come from sbcard.card.elements).
EXTRA_HEADERS = {"密码": "pin", "初始密码": "pin", "公民身份号码": "ssn", "身份证号码": "ssn",
                 "卡类别": "card_type", "社会保障卡卡号": "card_no"}
#: CSV columns that are not card contents: left out of a holder's data hash.
NOT_DATA = frozenset({"pin", "reissue"})


def data_order(keys: Iterable[str]) -> list[str]:
    """The columns a data hash covers, in its order (one list for every row of a file)."""
    return sorted(k for k in keys if k not in NOT_DATA)


def data_sha256(values: dict[str, str], order: list[str] | None = None) -> str:
    """What identifies a holder's card contents: every CSV value but the PIN. ``order``
    (from ``data_order``, the same for every row of a file) saves sorting per row."""
    keys = data_order(values) if order is None else order
    text = "\x1e".join([k + "\x1f" + values[k] for k in keys])
    return hashlib.sha256(text.encode()).hexdigest()


def _row_hasher(names: list[str], order: list[str]) -> Callable[[list[str]], str]:
    """``data_sha256`` straight from a CSV value list (columns ``names``): the same hash,
    without a dict or a join per row (one format string for the file)."""
    template = "\x1e".join(k.replace("{", "{{").replace("}", "}}") + "\x1f{}" for k in order)
    index = [names.index(k) for k in order]
    if len(index) < 2:
        return lambda values: data_sha256(dict(zip(names, values, strict=True)), order)
    pick = operator.itemgetter(*index)
    fmt, sha = template.format, hashlib.sha256
    return lambda values: sha(fmt(*pick(values)).encode()).hexdigest()


def sheet_row(row: int) -> int:
    """The row an operator sees in a spreadsheet for data row ``row`` (the header is row 1).

    The journal, ``Holder.row`` and ``CardOutcome.row_no`` keep the 1-based data row (so
    journals written before stay right); every message, listing and report converts here."""
    return row + 1


@dataclass(frozen=True)
class Holder:
    row: int                   # 1-based data row (``sheet_row`` names it for people)
    values: dict[str, str]
    #: ``data_sha256(values)``, computed once when read: resume and the journal both use it
    data_sha256: str = ""

    def __post_init__(self) -> None:
        if not self.data_sha256:
            object.__setattr__(self, "data_sha256", data_sha256(self.values))

    @property
    def ssn(self) -> str:
        return self.values["ssn"]

    @property
    def card_no(self) -> str:
        return self.values["card_no"]


class Holders(list[Holder]):
    """The holders of one CSV, in file order, with the SHA-256 of the exact bytes they were
    read and checked from: the journal keeps it (and each row's ``data_sha256``) so that a
    resume of the very same file need not check or hash 50,000 rows again."""

    file_sha256: str = ""


def one_line(text: str, limit: int = MAX_PROBLEM_LEN) -> str:
    """A problem as one short line: control characters shown escaped, long values cut."""
    flat = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


class CsvInvalid(BadInputError):
    """The CSV has problems; ``problems`` lists every one as 'row N: field: message'."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        problems = [one_line(p) for p in problems]
        self.problems = problems
        shown = problems[:MAX_ERRORS_SHOWN]
        more = len(problems) - len(shown)
        text = "\n  ".join(shown) + (f"\n  … and {more} more" if more else "")
        super().__init__(f"{path}: {len(problems)} problem(s), no card was touched:\n  {text}")


def _decode(raw: bytes, path: Path) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadInputError(f"{path}: neither UTF-8 nor GB18030 text")


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None


def _read_csv(path: Path, stripped: list[str] | None,
              data: bytes | None = None) -> tuple[list[str], list[list[str]]]:
    """Header (stripped) and rows as value lists the header's width, values stripped of ASCII
    spaces (each one noted in ``stripped``); blank lines are skipped, as csv.DictReader does.
    ``data``: the file's bytes when they came from elsewhere (stdin); ``path`` names them."""
    text = _decode(_read_bytes(path) if data is None else data, Path(path))
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header:
            raise BadInputError(f"{path}: empty file (no header line)")
        names = [f.strip() for f in header]
        twice = sorted({f for f in names if names.count(f) > 1})
        if twice:
            raise BadInputError(one_line(f"{path}: column {', '.join(twice)} appears twice in "
                                         "the header: which one is meant?"))
        width = len(names)
        rows = []
        for n, raw in enumerate(filter(None, reader), start=1):
            if len(raw) > width:
                raise BadInputError(f"{path}: row {sheet_row(n)} has more fields than the "
                                  "header")
            if len(raw) < width:
                raw += [""] * (width - len(raw))
            # most rows have no space at all: strip (and compare) only those that do
            values = [v.strip(" ") for v in raw] if " " in "".join(raw) else raw
            if stripped is not None and values != raw:
                stripped += [f"row {sheet_row(n)}: {k}"
                             for k, v, r in zip(names, values, raw, strict=True) if v != r]
            rows.append(values)
    except csv.Error as exc:
        raise BadInputError(f"{path}: malformed CSV ({exc})") from None
    return names, rows


def read_csv_rows(path: Path, stripped: list[str] | None = None,
                  data: bytes | None = None) -> list[dict[str, str]]:
    """Rows as dicts (values stripped of ASCII spaces, each one noted in ``stripped``);
    UTF-8 (with or without BOM) or GB18030 files. A duplicate column is refused."""
    names, rows = _read_csv(path, stripped, data)
    return [dict(zip(names, r, strict=True)) for r in rows]


def header_keys(fieldnames: list[str], path: Path) -> dict[str, str]:
    """File header → column key: ``ssn`` or ``社会保障号码`` (or ``社会保障号码 SSN``) → ssn.

    A header that names no known column is kept as it is (scripts may use it as a variable).
    """
    known = {**{BY_KEY[k].zh: k for k in (*REQUIRED, *OPTIONAL) if k in BY_KEY},
             **EXTRA_HEADERS}
    out: dict[str, str] = {}
    taken: dict[str, str] = {}
    for header in fieldnames:
        text = header.strip()
        first = text.split()[0] if text.split() else text
        key = (text if text in (*REQUIRED, *OPTIONAL) else
               known.get(text) or known.get(first) or text)
        if key in taken:
            raise BadInputError(f"{path}: columns {taken[key]!r} and {header!r} are both {key}")
        taken[key] = header
        out[header] = key
    return out


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the column as a spreadsheet names it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


_SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+\d+$", re.IGNORECASE | re.ASCII)
_SLASH_DATE = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$", re.ASCII)


def excel_hint(key: str, value: str) -> str | None:
    """What a spreadsheet did to a value, when the value shows it."""
    if key in ("ssn", "card_no") and _SCIENTIFIC.match(value):
        return ("a spreadsheet turned the number into scientific notation and lost digits: "
                "format the column as Text and enter the numbers again")
    if key.endswith("_date") and _SLASH_DATE.match(value):
        y, m, d = value.split("/")
        return (f"a spreadsheet reformatted the date: write {y}{int(m):02d}{int(d):02d} "
                "and format the column as Text")
    if key == "ethnicity" and is_ascii_digits(value) and len(value) == 1:
        return (f"a spreadsheet dropped the leading zero: write 0{value} and format the "
                "column as Text")
    return None


def _check_text(values: dict[str, str]) -> list[str]:
    """What no card field may hold: line breaks and other control characters, full-width
    or other non-ASCII spaces at either end, and (in free text) a leading formula
    character that turns a report cell into a spreadsheet formula (CSV injection)."""
    out = []
    for key, value in values.items():
        if value.isprintable() and value == value.strip() and not (
                key in _TEXT_FIELDS and value.startswith(_FORMULA_START)):
            continue                        # the common case, checked in C: nothing to say
        if value != value.strip():
            out.append(f"{key}: starts or ends with a space (full-width 全角空格?); remove it")
        elif any(ch.isspace() and ch != " " for ch in value):
            out.append(f"{key}: contains a line break, tab or full-width space 全角空格")
        elif any(not ch.isprintable() for ch in value):
            out.append(f"{key}: contains a control character")
        elif key in _TEXT_FIELDS and value.startswith(_FORMULA_START):
            out.append(f"{key}: starts with {value[0]!r}, which spreadsheets run as a "
                       "formula; not a name")
    return out


def _check_encoding(values: dict[str, str], bad: set[str]) -> list[str]:
    """Each field encoded exactly as the recipe's write-element will encode it (the
    REQUIRED fields have checks of their own that imply it: only the others are encoded)."""
    out = []
    for key, value in values.items():
        el = BY_KEY.get(key)
        if el is None or key in bad or key in REQUIRED or not value:
            continue
        try:
            el.encode_record(value)
        except BadInputError as exc:
            out.append(f"{key}: {exc}")
    return out


def _check_row(values: dict[str, str]) -> list[str]:
    out = _check_text(values)
    if out:
        return out

    def date(key: str) -> dt.date | None:
        try:
            return parse_date(values[key], key)
        except BadInputError as exc:
            out.append(f"{key}: {exc}")
            return None

    ssn = values["ssn"]
    out += [f"ssn: {w}" for w in check_ssn(ssn)]
    try:
        split_name(values["name"])
        if not values["name"]:
            out.append("name: empty")
    except BadInputError as exc:
        out.append(f"name: {exc}")
    if codes.sex(values["sex"]) is None:
        out.append(f"sex: {values['sex']!r} is not a GB/T 2261.1 code (1 男, 2 女, 9, 0)")
    if codes.ethnicity(values["ethnicity"]) is None:
        out.append(f"ethnicity: {values['ethnicity']!r} is not a GB/T 3304 code (01 汉族 …)")
    out += [f"birthplace: {w}" for w in check_region_code(values["birthplace"], "birthplace")]
    if codes.card_category(values["card_type"]) is None:
        out.append(f"card_type: {values['card_type']!r} is not 1-4")
    out += [f"card_no: {w}" for w in check_card_no(values["card_no"])]
    birth, issue, expiry = date("birth_date"), date("issue_date"), date("expiry_date")
    if issue and expiry and expiry <= issue:
        out.append("expiry_date: not after issue_date")
    if birth and issue and birth > issue:
        out.append("birth_date: after issue_date")
    pin = values.get("pin")
    if pin and not (is_ascii_digits(pin) and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS):
        out.append(f"pin: must be {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits 0-9 (not "
                   "full-width １２３)")
    version = values.get("spec_version")
    if version:
        try:
            encode_gbk(version, "spec_version")
        except BadInputError as exc:
            out.append(f"spec_version: {exc}")
    return out + _check_encoding(values, {p.split(":", 1)[0] for p in out})


def load_holders(path: Path, *, need_pin: bool = False,
                 notices: list[str] | None = None,
                 validated: Callable[[Holder], bool] | None = None,
                 unchanged: Callable[[str], Sequence[str] | None] | None = None,
                 data: bytes | None = None) -> Holders:
    """Read and validate; raises CsvInvalid listing every problem of every row. Spaces
    stripped from around values are said once in ``notices`` (normalised, never silent).
    ``validated(holder)``: True for a holder already checked with exactly this data (the
    journal knows its ``data_sha256``), so resuming a 50,000-holder batch does not re-check
    every field. ``unchanged(file_sha256)``: each row's ``data_sha256`` when the journal
    loaded (and so checked) exactly these bytes before, else None: then no row is checked or
    hashed again. ``data``: the CSV's bytes when read from stdin (``path`` then names them)."""
    raw = _read_bytes(path) if data is None else data
    file_sha = hashlib.sha256(raw).hexdigest()
    stripped: list[str] = []
    headers, file_rows = _read_csv(path, stripped, raw)
    if stripped and notices is not None:
        more = f" and {len(stripped) - 3} more" if len(stripped) > 3 else ""
        notices.append(f"{path}: spaces removed around {len(stripped)} value(s) "
                       f"({', '.join(stripped[:3])}{more})")
    if not file_rows:
        raise BadInputError(f"{path}: no holders (only a header)")
    keys = header_keys(headers, path)
    names = [keys[h] for h in headers]
    columns = set(names)
    missing = [c for c in REQUIRED if c not in columns]
    if need_pin and "pin" not in columns:
        missing.append("pin")
    if missing:
        raise BadInputError(f"{path}: missing column(s) {', '.join(missing)}; needed: "
                            f"{', '.join(f'{k}/{BY_KEY[k].zh}' for k in REQUIRED)}")
    holders = Holders()
    holders.file_sha256 = file_sha
    digests = unchanged(file_sha) if unchanged is not None else None
    if digests is not None and len(digests) == len(file_rows):
        # these very bytes passed every check below when the journal loaded them
        holders.extend(Holder(n, dict(zip(names, r, strict=True)), d)
                       for n, (r, d) in enumerate(zip(file_rows, digests, strict=True), 1))
        return holders
    row_sha = _row_hasher(names, data_order(names))
    #: key → "column C (性别)", as the operator sees the file
    where = {keys[h]: f"column {column_letter(i)} ({h})" for i, h in enumerate(headers)}
    problems: list[str] = []
    seen_ssn: dict[str, int] = {}
    seen_card: dict[str, int] = {}
    for n, values in enumerate(file_rows, start=1):
        line = sheet_row(n)
        row = dict(zip(names, values, strict=True))
        holder = Holder(n, row, row_sha(values))
        if validated is not None and validated(holder):
            # the journal holds this holder with exactly this data, checked when it came in
            pin = row.get("pin")
            issues = ([] if not pin or (is_ascii_digits(pin) and 4 <= len(pin) <= 12) else
                      ["pin: must be 4 to 12 digits 0-9 (not full-width １２３)"])
        else:
            issues = _check_row(row)
        for key, seen in (("ssn", seen_ssn), ("card_no", seen_card)):
            value = row[key].upper()
            if value in seen:
                issues.append(f"{key}: same as row {seen[value]}")
            else:
                seen[value] = line
        for issue in issues:
            key, _, text = issue.partition(": ")
            hint = excel_hint(key, row.get(key, ""))
            problems.append(f"row {line}: {key}: {where.get(key, key)}: {text}"
                            f"{' — ' + hint if hint else ''}")
        holders.append(holder)
    if problems:
        raise CsvInvalid(path, problems)
    return holders
