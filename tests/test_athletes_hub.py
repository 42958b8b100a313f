"""Athletes at the hub, on SQLite and on a real PostgreSQL: profiles (PIN only hashed), the
sessions they ran, their bests equal to what the stored records show, levels by the
documented rule, the roster for the consoles, and the schema upgrade from revision 0001."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from gym_helpers import chunks, db_url_fixture, store_fixture, summary  # noqa: F401
from pg_helpers import postgres_fixture  # noqa: F401

from controller.core.summary import SessionRecord, SessionSummary
from controller.gym.athletes import AthleteError, AthleteNotFound, AthleteStore, athlete_page
from controller.gym.database import alembic_config, migrate_to_head, open_engine
from controller.gym.store import HubStore
from controller.progression.bests import session_bests
from controller.progression.levels import levels_from_bests
from controller.services.athletes.pin import check_pin


def run_records(seconds: list[tuple[float, float]]) -> list[SessionRecord]:
    out, fwd, back = [], 0.0, 0.0
    for i, (speed, power) in enumerate(seconds, start=1):
        fwd, back = (fwd + speed, back) if speed >= 0 else (fwd, back - speed)
        out.append(SessionRecord(t_s=float(i), speed_mps=speed, distance_m=fwd + back, forward_m=fwd,
                                 backward_m=back, power_w=power, force_n=0.0))
    return out


def athlete_session(sid: str, athlete: str, recs: list[SessionRecord], started_at: str,
                    class_id: str | None = None) -> SessionSummary:
    last = recs[-1]
    return summary(sid, started_at=started_at, distance_m=last.distance_m, backward_m=last.backward_m
                   ).model_copy(update={"athlete": athlete, "athlete_name": "x", "class_id": class_id})


def test_profiles_keep_the_pin_only_as_a_hash_and_refuse_bad_fields(store: HubStore) -> None:
    athletes = AthleteStore(store.engine)
    ada = athletes.add("Ada Lovelace", 58.0, 190, pin="4321")
    assert ada.pin is not None and check_pin("4321", ada.pin.salt_hex, ada.pin.scrypt_hex)
    assert "4321" not in str(ada.public()) and ada.public()["pin_set"] is True
    for bad in ({"name": ""}, {"name": "x", "body_mass_kg": 5.0}, {"name": "y" * 81}):
        with pytest.raises(AthleteError):
            athletes.add(**bad)  # type: ignore[arg-type]
    with pytest.raises(AthleteNotFound):
        athletes.get("ath-nobody")
    assert [p.name for p in athletes.profiles()] == ["Ada Lovelace"]


def test_bests_equal_the_stored_records_and_levels_follow_the_rule(store: HubStore) -> None:
    athletes = AthleteStore(store.engine, store)
    ada = athletes.add("Ada", 60.0)
    first = run_records([(4.0, 300.0)] * 80 + [(-2.0, 150.0)] * 60)
    second = run_records([(5.0, 420.0)] * 70 + [(-2.5, 180.0)] * 50)
    other = run_records([(8.0, 900.0)] * 60)  # someone else's session: not Ada's bests
    for sid, recs, who, at in (("m-1", first, ada.id, "2026-12-01T08:00:00.000+00:00"),
                               ("m-2", second, ada.id, "2026-12-03T08:00:00.000+00:00"),
                               ("m-3", other, "ath-other", "2026-12-04T08:00:00.000+00:00")):
        s = athlete_session(sid, who, recs, at)
        store.ingest([(s, "gym")], chunks(s, recs))
    page = athlete_page(athletes, ada.id, None)
    want: dict[str, float] = {}
    for recs in (first, second):
        for key, value in session_bests(recs).items():
            want[key] = min(want.get(key, value), value) if key.endswith("_s") else max(want.get(key, value), value)
    assert page["bests"] == want
    assert page["bests"]["forward_100m_s"] == pytest.approx(20.0)      # the second session, 5 m/s
    assert page["bests"]["backward_100m_s"] == pytest.approx(40.0)     # 2.5 m/s backward
    assert page["bests"]["forward_power_60s_w"] == pytest.approx(420.0)
    assert page["levels"] == levels_from_bests(want, 60.0).model_dump()
    assert [s["id"] for s in page["recent_sessions"]] == ["m-2", "m-1"]
    assert [h["session"] for h in page["history"]["forward_100m_s"]] == ["m-1", "m-2"]
    assert page["proposal"] is not None and page["proposal"]["focus"] in page["levels"]
    rows = {r["id"]: r for r in store.list_sessions()}
    assert (rows["m-1"]["athlete"], rows["m-3"]["athlete"]) == (ada.id, "ath-other")


def test_a_session_whose_records_are_incomplete_waits_for_them(store: HubStore) -> None:
    athletes = AthleteStore(store.engine, store)
    ada = athletes.add("Ada")
    recs = run_records([(4.0, 300.0)] * 120)
    s = athlete_session("m-1", ada.id, recs, "2026-12-01T08:00:00.000+00:00")
    parts = chunks(s, recs, size=50)
    store.ingest([(s, "gym")], parts[:1])
    assert athletes.progression(ada.id)["bests"] == {}
    store.ingest(chunks=parts[1:])
    assert athletes.progression(ada.id)["bests"]["forward_400m_s"] == pytest.approx(100.0)


def test_the_roster_carries_levels_bests_and_the_pin_hash(store: HubStore) -> None:
    athletes = AthleteStore(store.engine, store)
    ada = athletes.add("Ada", 60.0, pin="1234")
    athletes.add("Bob")
    roster = athletes.roster("gym")
    entries = {a.name: a for a in roster.athletes}
    assert entries["Ada"].id == ada.id and entries["Ada"].pin is not None and entries["Bob"].pin is None
    assert entries["Bob"].levels.power == 3.0 and "1234" not in roster.model_dump_json()


def test_a_hub_database_of_revision_0001_is_upgraded_keeping_its_sessions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = open_engine(url, migrate=False)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_sessions")
    from controller.gym.schema import sessions
    with engine.begin() as conn:  # a row as revision 0001 stored it (no athlete, no class)
        conn.execute(sessions.insert().values(
            id="old-1", machine="mill-1", site="gym", started_at="2026-11-01T08:00:00+00:00", state="finished",
            mode="free", direction="forward", elapsed_s=60.0, distance_m=100.0, forward_m=100.0, backward_m=0.0,
            avg_power_w=90.0, energy_kcal=5.0, summary_json=summary("old-1").model_dump_json(), received_at=0.0))
    migrate_to_head(engine)
    rows = HubStore(engine).list_sessions()
    assert [(r["id"], r["athlete"], r["class"]) for r in rows] == [("old-1", None, None)]
    engine.dispose()
