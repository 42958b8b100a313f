"""A class's leaderboard at the hub, on SQLite and PostgreSQL: ranked by distance (then work),
stored sessions as finished with their stored figures, running machines from their live
view, a machine that went silent or offline marked out (and kept out), refused ones left off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gym_helpers import db_url_fixture, store_fixture, summary  # noqa: F401
from pg_helpers import postgres_fixture  # noqa: F401

from controller.gym.classes import OUT_AFTER_S, ClassStore, LiveClasses, rank
from controller.gym.store import HubStore
from controller.services.telemetry.fleet import MachineView


def view(machine: str, class_id: str, distance_m: float, work_j: float, status: str = "online",
         state: str = "running", athlete: str | None = None) -> MachineView:
    return MachineView(site="gym", machine=machine, status=status, session_state=state, distance_m=distance_m,
                       forward_m=distance_m, work_j=work_j, class_id=class_id, athlete=athlete, last_seen_s=100.0,
                       started_at=(datetime.now(UTC) - timedelta(seconds=30)).isoformat(timespec="milliseconds"))


def test_ranks_mix_stored_and_live_machines_and_mark_the_silent_one_out(store: HubStore) -> None:
    classes = ClassStore(store.engine)
    info = classes.create("gym", "retro-intervals", ["m1", "m2", "m3", "m4", "m5"],
                          datetime.now(UTC) - timedelta(seconds=40))
    classes.set_machine(info.id, "m5", status="refused", error="cannot class-start while a session is running")
    done = summary("m1-s", "m1", distance_m=150.0).model_copy(update={"class_id": info.id, "athlete": "a1"})
    store.ingest([(done, "gym")])
    views = {"m2": view("m2", info.id, 160.0, 9000.0, athlete="a2"), "m3": view("m3", info.id, 90.0, 5000.0),
             "m4": view("m4", info.id, 120.0, 7000.0)}
    now = [101.0]
    live = LiveClasses(classes, lambda site, m: views.get(m), lambda v: now[0] - (v.last_seen_s or 0.0))
    rows = live.leaderboard(classes.get(info.id))
    assert [(r["rank"], r["machine"], r["status"]) for r in rows] == [
        (1, "m2", "running"), (2, "m1", "finished"), (3, "m4", "running"), (4, "m3", "running")]
    assert rows[1]["distance_m"] == 150.0 and rows[1]["athlete"] == "a1" and rows[0]["athlete"] == "a2"
    assert rows[0]["avg_power_w"] > 0
    # m3 is killed: its status says offline (its last will); m4 goes silent
    views["m3"].status = "offline"
    views["m4"].last_seen_s = now[0] - OUT_AFTER_S - 1
    rows = live.leaderboard(classes.get(info.id))
    assert {r["machine"]: r["status"] for r in rows} == {"m1": "finished", "m2": "running", "m3": "out", "m4": "out"}
    assert next(r for r in rows if r["machine"] == "m3")["distance_m"] == 90.0, "keeps its last figures"
    assert classes.get(info.id).machines["m3"].status == "out", "kept out in the store"
    views["m4"].last_seen_s = now[0]  # back, but the class went on without it
    assert next(r for r in live.leaderboard(classes.get(info.id)) if r["machine"] == "m4")["status"] == "out"
    assert not live.finished(info, rows)


def test_the_final_leaderboard_ranks_equal_the_stored_summaries_ranks(store: HubStore) -> None:
    classes = ClassStore(store.engine)
    info = classes.create("gym", "retro-intervals", ["m1", "m2", "m3"], datetime.now(UTC) - timedelta(seconds=60))
    for machine, distance in (("m1", 80.0), ("m2", 120.0), ("m3", 100.0)):
        s = summary(f"{machine}-s", machine, distance_m=distance).model_copy(update={"class_id": info.id})
        store.ingest([(s, "gym")])
    live = LiveClasses(classes, lambda site, m: None, lambda v: 0.0)
    rows = live.leaderboard(classes.get(info.id))
    by_summary = rank([{"machine": m, "distance_m": s.distance_m, "work_j": s.work_j}
                       for m, s in classes.summaries(info.id).items()])
    assert [r["machine"] for r in rows] == [r["machine"] for r in by_summary] == ["m2", "m3", "m1"]
    assert live.finished(info, rows)
    payload = live.payload(classes.get(info.id))
    assert [r.rank for r in payload.rows] == [1, 2, 3]


def test_before_the_start_machines_wait(store: HubStore) -> None:
    classes = ClassStore(store.engine)
    info = classes.create("gym", "retro-intervals", ["m1"], datetime.now(UTC) + timedelta(seconds=60))
    live = LiveClasses(classes, lambda site, m: None, lambda v: 0.0)
    assert [r["status"] for r in live.leaderboard(classes.get(info.id))] == ["waiting"]


def test_a_machine_between_its_end_and_its_stored_summary_keeps_its_last_figures(store: HubStore) -> None:
    classes = ClassStore(store.engine)
    info = classes.create("gym", "retro-intervals", ["m1", "m2"], datetime.now(UTC) - timedelta(seconds=40))
    views = {"m1": view("m1", info.id, 100.0, 5000.0), "m2": view("m2", info.id, 80.0, 4000.0)}
    live = LiveClasses(classes, lambda site, m: views.get(m), lambda v: 0.0)
    live.leaderboard(classes.get(info.id))
    views["m1"].session_state, views["m1"].class_id = "finished", None  # stopped; summary on its way
    rows = live.leaderboard(classes.get(info.id))
    assert [(r["machine"], r["distance_m"]) for r in rows] == [("m1", 100.0), ("m2", 80.0)]
    store.ingest([(summary("m1-s", "m1", distance_m=101.0).model_copy(update={"class_id": info.id}), "gym")])
    rows = live.leaderboard(classes.get(info.id))
    assert [(r["machine"], r["distance_m"], r["status"]) for r in rows] == [("m1", 101.0, "finished"),
                                                                           ("m2", 80.0, "running")]


def test_an_athlete_who_stops_mid_workout_while_the_class_goes_on_is_out(store: HubStore) -> None:
    from controller.core.summary import SegmentSummary

    classes = ClassStore(store.engine)
    info = classes.create("gym", "retro-intervals", ["m1", "m2", "m3"], datetime.now(UTC) - timedelta(seconds=90))

    def stored(machine: str, elapsed_s: float) -> None:
        s = summary(f"{machine}-s", machine, distance_m=elapsed_s * 3).model_copy(update={
            "class_id": info.id, "elapsed_s": elapsed_s,
            "segments": [SegmentSummary(index=0, label="Warm-up (partial)", elapsed_s=elapsed_s)]})
        store.ingest([(s, "gym")])

    stored("m1", 20.0)  # stopped after 20 s while the others went on
    views = {"m2": view("m2", info.id, 200.0, 9000.0), "m3": view("m3", info.id, 180.0, 8000.0)}
    live = LiveClasses(classes, lambda site, m: views.get(m), lambda v: 0.0)
    assert {r["machine"]: r["status"] for r in live.leaderboard(classes.get(info.id))}["m1"] == "out"
    stored("m2", 80.0)  # the coach stops the class: m2 and m3 end together, mid-workout
    stored("m3", 79.0)
    rows = live.leaderboard(classes.get(info.id))
    assert {r["machine"]: r["status"] for r in rows} == {"m1": "out", "m2": "finished", "m3": "finished"}


def test_a_machine_with_a_latched_fault_is_out_of_the_class(store: HubStore) -> None:
    classes = ClassStore(store.engine)
    info = classes.create("gym", "retro-intervals", ["m1", "m2"], datetime.now(UTC) - timedelta(seconds=40))
    views = {"m1": view("m1", info.id, 100.0, 5000.0), "m2": view("m2", info.id, 80.0, 4000.0)}
    views["m1"].faults = [{"code": "link_lost", "latched": False, "active": True}]  # passes: not out
    live = LiveClasses(classes, lambda site, m: views.get(m), lambda v: 0.0)
    assert [r["status"] for r in live.leaderboard(classes.get(info.id))] == ["running", "running"]
    views["m2"].faults = [{"code": "estop", "latched": True, "active": True}]
    rows = {r["machine"]: r for r in live.leaderboard(classes.get(info.id))}
    assert (rows["m2"]["status"], rows["m2"]["distance_m"]) == ("out", 80.0)
    assert classes.get(info.id).machines["m2"].status == "out"
