"""Synthetic holders for personalisation tests: valid check digits, invented people."""

from __future__ import annotations

import csv
from pathlib import Path

from sbcard.card.identity import card_no_check_char, id_check_char


def holder_rows(n: int, *, start: int = 1, pin: str | None = "123456") -> list[dict[str, str]]:
    rows = []
    for i in range(start, start + n):
        month, day = (i % 12) + 1, (i % 28) + 1
        body = f"5199001990{month:02d}{day:02d}{i % 1000:03d}"
        body_no = f"A{i + 100:07d}"
        row = {
            "ssn": body + id_check_char(body),
            "name": f"测试{i}号",
            "sex": str(1 + i % 2),
            "ethnicity": "01",
            "birthplace": "519900",
            "birth_date": f"1990-{month:02d}-{day:02d}",
            "card_no": body_no + card_no_check_char(body_no),
            "card_type": "3",
            "issue_date": "2026-11-01",
            "expiry_date": "2036-11-01",
        }
        if pin is not None:
            row["pin"] = pin
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path
