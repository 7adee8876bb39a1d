"""The personalisation journal on PostgreSQL: several stations share one batch.

Needs a PostgreSQL server (``./.ci/postgres`` starts one and prints the URL; CI sets
SBCARD_PG_URL and SBCARD_REQUIRE_PG=1 so a missing server fails instead of skipping).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading

import pytest

from sbcard.compose import SimSlot
from sbcard.ops.journal import Journal
from sbcard.ops.personalise import run_batch
from tests.holders_factory import holder_rows, write_csv
from tests.test_personalise import ListSlot, blank_card, card_id_hex, holder_on_card, make_plan

DEFAULT_URL = "postgresql:///sbcard_test"


@pytest.fixture
def pg_url() -> str:
    return pg_schema_url()


def pg_schema_url(suffix: str = "") -> str:
    """The server's URL with a fresh schema of this test process's own (pytest-xdist workers,
    and other test runs on the same server, run these tests side by side without dropping
    each other's tables: the name has the process id, not just the worker's name); skips
    (or fails, with SBCARD_REQUIRE_PG=1) without a server."""
    base = os.environ.get("SBCARD_PG_URL", DEFAULT_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"sbcard_{worker}_{os.getpid()}{suffix}"
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            _drop_schemas_of_ended_runs(conn)
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # any failure: no server to test against
        if os.environ.get("SBCARD_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL at {base} not usable: {exc}")
        pytest.skip(f"PostgreSQL at {base} not usable: {exc}")
    return url


def _drop_schemas_of_ended_runs(conn) -> None:
    """Schemas left by test processes of this machine that have ended (the server is local)."""
    names = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sbcard\\_%'"
                         ).fetchall()
    for (name,) in names:
        parts = name.split("_")
        if len(parts) >= 3 and parts[2].isdigit() and not os.path.exists(f"/proc/{parts[2]}"):
            with contextlib.suppress(Exception):
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def rows(url: str):
    j = Journal(url)
    try:
        return j.db.execute("SELECT e.row_no, h.ssn, h.card_id, h.status FROM entry e JOIN "
                            "holder h ON h.id = e.holder_id ORDER BY e.batch_id, e.row_no"
                            ).fetchall()
    finally:
        j.close()


def test_batch_on_postgres(pg_url, tmp_path):
    csv = write_csv(tmp_path / "h.csv", holder_rows(12))
    outcomes: list = []
    plan = make_plan(pg_url, csv, outcomes)
    slot = SimSlot("blank", 12)
    run_batch([slot], pg_url, plan)
    got = rows(pg_url)
    assert [r[3] for r in got] == ["done"] * 12 and len({r[2] for r in got}) == 12
    by_card = {r[2]: r[1] for r in got}
    for card in slot.cards:
        assert by_card[card_id_hex(card)] == holder_on_card(card)[0]


def test_two_stations_share_one_batch(pg_url, tmp_path):
    """Two stations (separate processes in real life: separate connections here) take
    holders from the same batch concurrently; none is taken twice."""
    csv = write_csv(tmp_path / "h.csv", holder_rows(40))
    outcomes_a: list = []
    outcomes_b: list = []
    plan_a = make_plan(pg_url, csv, outcomes_a)
    plan_b = make_plan(pg_url, csv, outcomes_b, resume=True)   # the second station joins
    a = threading.Thread(target=run_batch, args=([SimSlot("blank", 40, "A", 1)], pg_url, plan_a))
    b = threading.Thread(target=run_batch,
                         args=([SimSlot("blank", 40, "B", 1001)], pg_url, plan_b))
    a.start()
    b.start()
    a.join(60)
    b.join(60)
    got = rows(pg_url)
    assert [r[3] for r in got] == ["done"] * 40
    assert len({r[2] for r in got}) == 40
    done_a = {o.row_no for o in outcomes_a if o.outcome == "done"}
    done_b = {o.row_no for o in outcomes_b if o.outcome == "done"}
    assert done_a and done_b and not done_a & done_b
    assert done_a | done_b == set(range(1, 41))


def test_torn_card_resumes_on_postgres(pg_url, tmp_path):
    from sbcard.transport.base import CardTornError

    csv = write_csv(tmp_path / "h.csv", holder_rows(2))
    outcomes: list = []
    plan = make_plan(pg_url, csv, outcomes)
    c1, c2 = blank_card(1), blank_card(2)
    once = {"left": 1}

    def tear(card, cmd):
        if cmd.ins == 0xDC and once["left"]:
            once["left"] -= 1
            raise CardTornError()
        return None

    c1.command_hooks.append(tear)
    run_batch([ListSlot([c1, c2, c1])], pg_url, plan)
    assert [o.outcome for o in outcomes] == ["torn", "done", "done"]
    assert [r[3] for r in rows(pg_url)] == ["done", "done"]


def test_cli_personalise_with_postgres_journal(pg_url, tmp_path, capsys, monkeypatch):
    from sbcard.cli.main import main

    csv = write_csv(tmp_path / "h.csv", holder_rows(3))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    for extra in ((), ("--status",)):
        with pytest.raises(SystemExit) as exc:
            main(["--sim", "blank", "--keys", "test", "personalise", str(csv), "--journal",
                  pg_url, "--no-progress", *extra])
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "done 完成 3/3" in out and "3/3 done" in out
    assert Journal(pg_url).find_batch(csv) is not None


def test_unreachable_server_is_one_line(tmp_path, capsys):
    from sbcard.cli.main import main

    csv = write_csv(tmp_path / "h.csv", holder_rows(1))
    with pytest.raises(SystemExit) as exc:
        main(["--sim", "blank", "--keys", "test", "personalise", str(csv), "--journal",
              "postgresql://127.0.0.1:1/none?connect_timeout=2", "--no-progress"])
    assert exc.value.code == 3
    assert "journal postgresql://" in capsys.readouterr().err


def test_stations_opening_a_new_journal_at_once(pg_url):
    """Several stations start on a fresh journal together: each creates the tables "if not
    exists", which PostgreSQL does not make safe by itself (duplicate key in pg_type)."""
    start = threading.Barrier(6)
    errors: list[str] = []

    def station() -> None:
        start.wait(30)
        try:
            Journal(pg_url).close()
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=station) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Journal(pg_url) as j:
        assert j.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
