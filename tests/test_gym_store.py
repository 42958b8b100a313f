"""The hub's central history on SQLite and on a real PostgreSQL: one schema (alembic), exactly
one row per session whatever the duplicates, records for exports, filters and totals."""

from __future__ import annotations

from datetime import date

import fitdecode
import pytest
from gym_helpers import chunks, db_url_fixture, records, store_fixture, summary  # noqa: F401
from pg_helpers import postgres_fixture  # noqa: F401
from sqlalchemy import inspect

from controller.core.summary import SegmentSummary
from controller.gym.database import DatabaseError, DatabaseUrlError, database_url, migrate_to_head, open_engine
from controller.gym.store import HubSessionNotFound, HubStore, SessionFilter
from controller.services.history.csv_export import records_csv


def test_the_schema_is_the_same_on_both_databases_and_migrating_again_changes_nothing(store: HubStore) -> None:
    migrate_to_head(store.engine)  # a second start: already at head
    tables = set(inspect(store.engine).get_table_names())
    assert {"sessions", "session_records", "session_record_chunks", "session_laps", "alembic_version"} <= tables


def test_a_session_delivered_three_times_is_stored_once(store: HubStore) -> None:
    s = summary()
    first = store.ingest([(s, "gym")])
    again = store.ingest([(s, "gym"), (s, "gym")])
    assert (first.new_sessions, again.new_sessions, again.duplicate_sessions) == (1, 0, 2)
    rows = store.list_sessions()
    assert [r["id"] for r in rows] == [s.session_id]
    assert rows[0]["distance_m"] == s.distance_m and rows[0]["avg_power_w"] == s.avg_power_w
    assert (rows[0]["athlete"], rows[0]["class"], rows[0]["site"]) == (None, None, "gym")


def test_records_arriving_twice_and_before_their_summary_are_kept_once(store: HubStore) -> None:
    s = summary()
    parts = chunks(s, records(60))
    store.ingest(chunks=parts[:2])
    store.ingest(chunks=parts)  # at-least-once: the first two again
    store.ingest([(s, "gym")])
    entry, _, stored = store.session(s.session_id)
    assert [r.t_s for r in stored] == [float(t) for t in range(1, 61)]
    assert entry["records"] == 60 and entry["records_complete"]


def test_exports_use_the_machines_exporters_with_the_completed_summary(store: HubStore) -> None:
    s = summary()
    recs = records(30)
    lap = SegmentSummary(index=0, label="warm-up", elapsed_s=60.0, distance_m=s.distance_m)
    store.ingest([(s, "gym")], chunks(s, recs, laps=[lap]))
    assert store.export(s.session_id, "csv").data == records_csv(recs).encode()
    fit = store.export(s.session_id, "fit").data
    with fitdecode.FitReader(fit, check_crc=fitdecode.CrcCheck.ENABLED) as reader:
        frames = [f for f in reader if isinstance(f, fitdecode.FitDataMessage)]
    assert sum(f.name == "record" for f in frames) == 30
    laps = [f for f in frames if f.name == "lap"]
    assert len(laps) == 1
    session = next(f for f in frames if f.name == "session")
    assert session.get_value("avg_heart_rate") is not None  # filled from the records, as the machine does


def test_filters_paging_and_totals(store: HubStore) -> None:
    store.ingest([
        (summary("a-1", "a", started_at="2026-12-04T09:00:00+00:00", workout="retro-intervals"), "north"),
        (summary("a-2", "a", started_at="2026-12-05T09:00:00+00:00", backward_m=120.0), "north"),
        (summary("b-1", "b", started_at="2026-12-05T10:00:00+00:00", backward_m=50.0), "south"),
    ])
    assert [r["id"] for r in store.list_sessions()] == ["b-1", "a-2", "a-1"]
    assert [r["id"] for r in store.list_sessions(SessionFilter(machine="a"))] == ["a-2", "a-1"]
    assert [r["id"] for r in store.list_sessions(SessionFilter(since=date(2026, 12, 5)))] == ["b-1", "a-2"]
    assert [r["id"] for r in store.list_sessions(SessionFilter(until=date(2026, 12, 4)))] == ["a-1"]
    assert [r["id"] for r in store.list_sessions(SessionFilter(workout="retro-intervals"))] == ["a-1"]
    assert [r["id"] for r in store.list_sessions(SessionFilter(direction="backward"))] == ["a-2"]
    assert [r["id"] for r in store.list_sessions(SessionFilter(direction="both"))] == ["b-1"]
    assert [r["id"] for r in store.list_sessions(limit=1, offset=1)] == ["a-2"]
    assert store.count(SessionFilter(site="north")) == 2
    totals = store.totals()
    assert [(d["day"], d["sessions"]) for d in totals["per_day"]] == [("2026-12-05", 2), ("2026-12-04", 1)]
    assert [(m["machine"], m["sessions"]) for m in totals["per_machine"]] == [("a", 2), ("b", 1)]
    assert totals["per_machine"][0]["distance_m"] == pytest.approx(241.0)


def test_an_unknown_session_is_a_clear_error(store: HubStore) -> None:
    with pytest.raises(HubSessionNotFound, match="no session 'nope'"):
        store.session("nope")


def test_database_urls_are_checked_and_postgresql_uses_psycopg3(tmp_path: object) -> None:
    from pathlib import Path
    assert database_url(None, Path("/d")) == "sqlite:////d/gym-hub.sqlite3"
    assert database_url("postgresql://u:p@h:5432/db", Path("/d")).startswith("postgresql+psycopg://u:p@h:5432/db")
    with pytest.raises(DatabaseUrlError, match="not supported"):
        database_url("mysql://h/db", Path("/d"))
    with pytest.raises(DatabaseUrlError, match="not a database URL"):
        database_url("::nonsense::", Path("/d"))


def test_an_unreachable_postgresql_is_a_database_error_without_the_password() -> None:
    from mqtt_helpers import free_port
    url = database_url(f"postgresql://hub:s3cret@127.0.0.1:{free_port()}/hub", __import__("pathlib").Path("/d"))
    with pytest.raises(DatabaseError) as err:
        open_engine(url)
    assert "s3cret" not in str(err.value) and "cannot open the hub database" in str(err.value)
