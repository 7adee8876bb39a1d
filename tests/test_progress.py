"""Batch progress: a real ETA (this run's pace, not the resumed cards'), and plain lines per N
cards when stderr is a log file."""

from __future__ import annotations

import io
import re

from sbcard.cli.progress import BatchProgress
from tests.cli_runner import run_cli
from tests.holders_factory import holder_rows, write_csv


def test_eta_counts_only_this_runs_cards():
    p = BatchProgress(total=100, done=40, stream=io.StringIO(), tty=False)
    assert p.eta() is None                         # nothing made yet in this run
    p.started = 1000.0
    p.done = 50                                    # 10 cards in 20 s: 2 s per card
    assert p.eta(now=1020.0) == 100.0              # 50 left → 100 s, not 50 × (20/50)
    assert "ETA 剩余 01:40" in p.text(now=1020.0) and "2.0 s/card" in p.text(now=1020.0)


def test_one_line_per_n_cards_when_not_a_terminal():
    out = io.StringIO()
    p = BatchProgress(total=25, done=0, stream=out, every=10, tty=False)
    for _ in range(25):
        p.advance()
    p.finish()
    lines = out.getvalue().splitlines()
    assert [re.search(r"(\d+)/25", ln).group(1) for ln in lines] == ["10", "20", "25"]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_a_bar_redrawn_in_place():
    out = io.StringIO()
    p = BatchProgress(total=4, done=0, stream=out, tty=True)
    p.start()
    p.advance()
    p.finish()
    assert out.getvalue().count("\r") == 2 and "[######" in out.getvalue()


def test_personalise_logs_progress_lines(capsys, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(5))
    rc, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "personalise", str(csv),
                         "--progress-every", "2")
    assert rc == 0, err
    counts = re.findall(r"personalising 制卡: (\d)/5", err)
    assert counts == ["2", "4", "5"] and "s/card" in err
    rc, _, err = run_cli(capsys, "--sim", "blank", "--keys", "test", "-q", "personalise",
                         str(tmp_path / "h.csv"), "--resume")
    assert "personalising" not in err
