"""The local store sink and its read API (load_run / list_runs), and the spool's policy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sensord.errors import InputError, ServiceError
from sensord.model import Alert, FormSummary, PainReport, RunInfo, SensorHealth
from sensord.sinks.local_store import LocalStore, list_runs, load_run
from sensord.sinks.spool import Spool
from tests.test_delivery_basic import T0_S, make_steps


async def test_round_trip_and_rewrites_replace(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    run = RunInfo("alice", "pelvis1", "run-local", "pelvis", extra={"shoe": "x"})
    steps = make_steps(50)
    alert = Alert(
        "cadence_low", "warning", "cadence_spm", 170.0, 160.0, 30.0, 42.0, "raised", "Quicker steps"
    )
    async with LocalStore(path, run, epoch_offset_s=T0_S) as store:
        for s in steps:
            await store.publish_step(s)
        await store.publish_steps(steps[10:20])  # a replay: replaces, never doubles
        await store.publish_alert(alert)
        for side in ("left", "right"):  # one detector, both sides, the same moment
            await store.publish_alert(dataclasses.replace(
                alert, kind="pelvic_drop_rising", metric="pelvic_drop_deg", side=side))
        await store.publish_alert(alert)  # a replay: replaces, never doubles
        await store.publish_summary(FormSummary(t_s=10.0, form_score=80.0, steps=28))
        await store.publish_health(SensorHealth(t_s=5.0, connected=True, battery_pct=90))
        await store.publish_pain(PainReport(t_s=12.5, score=3, location="hip"))
    other = RunInfo("bob", "foot-l", "run-other", "foot", sensor_side="left")
    async with LocalStore(path, other, epoch_offset_s=T0_S) as store:
        await store.publish_step(make_steps(1)[0])

    rec = load_run(path, "run-local")
    assert rec.run == run
    assert rec.epoch_offset_s == T0_S
    assert rec.steps == tuple(steps)
    assert sorted((a.kind, a.side or "") for a in rec.alerts) == [
        ("cadence_low", ""), ("pelvic_drop_rising", "left"), ("pelvic_drop_rising", "right")]
    assert rec.summaries[0].form_score == 80.0
    assert rec.health[0].battery_pct == 90
    assert rec.pain == (PainReport(t_s=12.5, score=3, location="hip"),)
    assert [(r.run.run_id, r.n_steps) for r in list_runs(path)] == [
        ("run-local", 50),
        ("run-other", 1),
    ]
    assert load_run(path, "run-other").steps[0].placement == "foot"
    with pytest.raises(ServiceError, match="run-local"):
        load_run(path, "nope")
    with pytest.raises(InputError, match="does not exist"):
        load_run(tmp_path / "missing.sqlite", "run-local")


def test_spool_survives_reopen_and_drops_oldest_telemetry_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_messages=5)
    spool.append("t/alert", b"a0", droppable=False)
    for i in range(6):
        spool.append("t/steps", f"s{i}".encode())
    assert len(spool) == 5
    assert spool.dropped == 2
    spool.close()
    again = Spool(tmp_path / "spool.sqlite", max_messages=5)  # durable across a restart
    assert [m.payload for m in again.peek(10)] == [b"a0", b"s2", b"s3", b"s4", b"s5"]
    again.remove([m.seq for m in again.peek(2)])
    assert [m.payload for m in again.peek(10)] == [b"s3", b"s4", b"s5"]
    assert len(again) == 3


def test_spool_shared_with_another_process_does_not_keep_a_stale_count(tmp_path: Path) -> None:
    """Two runs of one runner and sensor share the outbox file: when one sends and removes
    the other's messages, the other must see an empty spool (it used to spin forever on
    'not empty, but nothing to send')."""
    mine, other = Spool(tmp_path / "o.sqlite"), Spool(tmp_path / "o.sqlite")
    for i in range(3):
        mine.append("t/steps", f"s{i}".encode())
    other.remove([m.seq for m in other.peek(10)])
    assert mine.peek(10) == []
    assert len(mine) == 0
