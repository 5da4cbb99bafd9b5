"""The live terminal view: plain line-per-step output off a TTY, rich panel on one."""

from __future__ import annotations

import io

from rich.console import Console

from sensord.live_view import (
    METRICS,
    LiveView,
    ViewState,
    arrow,
    render,
    update_alert,
    update_step,
)
from sensord.model import Alert, FormSummary, RunInfo, SensorHealth, Step

INFO = RunInfo(runner_id="ana", sensor_id="polar-h10", run_id="ana-run-1", placement="pelvis")


def _step(i: int, cadence: float, drop: float = 5.0) -> Step:
    return Step(t_ic=i * 0.34, t_fc=i * 0.34 + 0.24, gct_ms=240.0, cadence_spm=cadence,
                side="left" if i % 2 == 0 else "right", pelvic_drop_deg=drop,
                step_index=i, gct_balance_pct=50.0)


def _alert(state: str = "raised") -> Alert:
    return Alert(kind="cadence_low", severity="warning", metric="cadence_spm",
                 baseline=176.0, current=166.0, began_at_s=600.0, t_s=630.0, state=state,
                 message="Cadence 166, shorten your stride")


def test_plain_output_is_one_line_per_step_off_a_tty() -> None:
    out = io.StringIO()  # not a TTY
    with LiveView(INFO, stream=out, total_s=100.0) as view:
        for i in range(5):
            view.on_step(_step(i, 176.0))
        view.on_alert(_alert())
        view.on_health(SensorHealth(t_s=2.0, connected=True, battery_pct=80))
        view.on_health(SensorHealth(t_s=7.0, connected=True, battery_pct=80))  # unchanged
        view.on_health(SensorHealth(t_s=9.0, connected=False))
        view.on_summary(FormSummary(t_s=5.0, form_score=90.0, activity="run"))
        view.on_progress(0.05)
        view.on_progress(0.07)  # same decile: no new line
        view.on_progress(0.5)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("sensord: runner ana run ana-run-1")
    step_lines = [ln for ln in lines if " step " in ln]
    assert len(step_lines) == 5
    assert "cadence 176 spm" in step_lines[0]
    assert " L " in step_lines[0]
    assert " R " in step_lines[1]
    assert any("ALERT raised warning cadence_low: Cadence 166" in ln for ln in lines)
    assert sum("sensor:" in ln for ln in lines) == 2  # connected, then DISCONNECTED
    assert any("DISCONNECTED" in ln for ln in lines)
    assert [ln for ln in lines if ln.startswith("replay")] == [
        "replay 5 % (0:00:05 of 0:01:40)", "replay 50 % (0:00:50 of 0:01:40)"]
    assert "\x1b[" not in out.getvalue()  # no terminal escapes in a pipe


def test_trend_arrows_follow_the_metric_and_colour_the_bad_direction() -> None:
    state = ViewState(INFO)
    for i in range(40):
        state = update_step(state, _step(i, 176.0 - 0.6 * i, drop=5.0 + 0.1 * i))
    cadence = next(m for m in METRICS if m.key == "cadence_spm")
    drop_r = next(m for m in METRICS if m.key == "pelvic_drop_right_deg")
    a = arrow(cadence, state.trend("cadence_spm"))
    assert a.plain == "↓"
    assert "red" in str(a.style)  # falling cadence is bad
    b = arrow(drop_r, state.trend("pelvic_drop_right_deg"))
    assert b.plain == "↑"
    assert "red" in str(b.style)  # rising pelvic drop is bad
    steady = ViewState(INFO)
    for i in range(40):
        steady = update_step(steady, _step(i, 176.0))
    assert arrow(cadence, steady.trend("cadence_spm")).plain == "→"


def test_alerts_are_active_until_cleared() -> None:
    state = update_alert(ViewState(INFO), _alert("raised"))
    assert [a.kind for a in state.active] == ["cadence_low"]
    state = update_alert(state, _alert("cleared"))
    assert state.active == ()
    assert [a.state for a in state.recent] == ["raised", "cleared"]


def test_rich_view_draws_metrics_alerts_health_and_progress() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100, color_system="truecolor")
    ticks = iter(range(1000))
    with LiveView(INFO, console=console, stream=buf, total_s=1800.0,
                  clock=lambda: float(next(ticks))) as view:
        for i in range(30):
            view.on_step(_step(i, 176.0 - i))
        view.on_summary(FormSummary(t_s=10.0, form_score=62.0, activity="run"))
        view.on_alert(_alert())
        view.on_health(SensorHealth(t_s=10.0, connected=True, packet_loss_pct=1.5,
                                    battery_pct=77, latency_ms=35.0))
        view.on_progress(0.25)
    text = buf.getvalue()
    assert "\x1b[" in text  # drawn with terminal styling
    plain = Console(file=io.StringIO(), width=100)
    with plain.capture() as cap:
        plain.print(render(view.state))
    screen = cap.get()
    for label in ("Cadence", "Ground contact", "Pelvic drop L", "Pelvic drop R",
                  "Form score", "sensor: connected", "battery 77 %", "Cadence 166",
                  "replay 25 % (0:07:30 of 0:30:00)", "ana", "ana-run-1", "30 steps"):
        assert label in screen, label
    assert "↓" in screen
