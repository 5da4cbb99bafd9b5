"""Live terminal view of a run: current metrics with trend arrows, alerts, sensor health.

``sensord run`` feeds a :class:`LiveView` with the events it produces::

    with LiveView(run_info, total_s=recording_duration) as view:
        for event in events:
            view.on_step(step) / view.on_alert(a) / view.on_summary(s) / view.on_health(h)
            view.on_progress(fraction_done)          # replays only

On a terminal it draws a rich live panel; when stdout is not a TTY (a pipe, a log file,
systemd) it prints one plain line per step instead, plus one line per alert, and health
or progress lines only when they change. The state is a frozen :class:`ViewState`;
:func:`update_*` functions return new states and :func:`render` is pure, so the view is
deterministic to test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sensord.model import Alert, FormSummary, RunInfo, SensorHealth, Step


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric the view shows: where to read it and which direction is bad."""

    key: str
    label: str
    unit: str
    fmt: str
    bad_when_rising: bool | None  # None: neither direction is bad
    band: tuple[float, float] | None = None


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("cadence_spm", "Cadence", "spm", "{:.0f}", False, (170.0, 180.0)),
    MetricSpec("gct_ms", "Ground contact", "ms", "{:.0f}", True),
    MetricSpec("pelvic_drop_left_deg", "Pelvic drop L", "°", "{:.1f}", True),
    MetricSpec("pelvic_drop_right_deg", "Pelvic drop R", "°", "{:.1f}", True),
    MetricSpec("gct_balance_pct", "GCT balance (L)", "%", "{:.1f}", None, (48.0, 52.0)),
    MetricSpec("vertical_oscillation_cm", "Vertical osc.", "cm", "{:.1f}", True),
    MetricSpec("impact_g", "Impact", "g", "{:.2f}", True),
    MetricSpec("form_score", "Form score", "", "{:.0f}", False, (75.0, 100.0)),
)

#: Smoothing of the fast and slow averages behind the trend arrow (per update).
FAST_ALPHA = 0.3
SLOW_ALPHA = 0.05
#: Relative fast-vs-slow difference that counts as a trend.
TREND_REL = 0.02
MAX_RECENT_ALERTS = 6


@dataclass(frozen=True, slots=True)
class Trend:
    """Fast and slow exponential averages of one metric."""

    fast: float
    slow: float
    n: int = 1

    def push(self, x: float) -> Trend:
        return Trend(self.fast + FAST_ALPHA * (x - self.fast),
                     self.slow + SLOW_ALPHA * (x - self.slow), self.n + 1)

    @property
    def direction(self) -> int:
        """+1 rising, -1 falling, 0 steady (needs a few values)."""
        if self.n < 5:
            return 0
        scale = max(abs(self.slow), 1e-9)
        d = (self.fast - self.slow) / scale
        return 1 if d > TREND_REL else -1 if d < -TREND_REL else 0


@dataclass(frozen=True, slots=True)
class ViewState:
    """Everything the view shows (immutable; ``update_*`` return new states)."""

    info: RunInfo
    steps: int = 0
    t_s: float = 0.0
    current: tuple[tuple[str, float], ...] = ()
    trends: tuple[tuple[str, Trend], ...] = ()
    active: tuple[Alert, ...] = ()
    recent: tuple[Alert, ...] = ()
    health: SensorHealth | None = None
    activity: str | None = None
    progress: float | None = None
    total_s: float | None = None

    def value(self, key: str) -> float | None:
        return dict(self.current).get(key)

    def trend(self, key: str) -> Trend | None:
        return dict(self.trends).get(key)


def _with_values(state: ViewState, values: dict[str, float | None]) -> ViewState:
    cur = dict(state.current)
    trends = dict(state.trends)
    for k, v in values.items():
        if v is None:
            continue
        cur[k] = float(v)
        t = trends.get(k)
        trends[k] = Trend(float(v), float(v)) if t is None else t.push(float(v))
    return replace(state, current=tuple(cur.items()), trends=tuple(trends.items()))


def update_step(state: ViewState, s: Step) -> ViewState:
    """Fold one step in (per-side pelvic drop goes to the L / R rows)."""
    values: dict[str, float | None] = {
        "cadence_spm": s.cadence_spm, "gct_ms": s.gct_ms,
        "gct_balance_pct": s.gct_balance_pct,
        "vertical_oscillation_cm": s.vertical_oscillation_cm, "impact_g": s.impact_g,
    }
    if s.side in ("left", "right"):
        values[f"pelvic_drop_{s.side}_deg"] = s.pelvic_drop_deg
    return replace(_with_values(state, values), steps=state.steps + 1,
                   t_s=max(state.t_s, s.t_ic))


def update_summary(state: ViewState, s: FormSummary) -> ViewState:
    """Fold a rolling summary in (form score and activity)."""
    st = _with_values(state, {"form_score": s.form_score})
    return replace(st, activity=s.activity or state.activity, t_s=max(state.t_s, s.t_s))


def update_alert(state: ViewState, a: Alert) -> ViewState:
    """Raised alerts become active until the same kind (and side) is cleared."""
    others = tuple(x for x in state.active if (x.kind, x.side) != (a.kind, a.side))
    active = (*others, a) if a.state == "raised" else others
    recent = (*state.recent, a)[-MAX_RECENT_ALERTS:]
    return replace(state, active=active, recent=recent)


def update_health(state: ViewState, h: SensorHealth) -> ViewState:
    return replace(state, health=h)


def update_progress(state: ViewState, frac: float) -> ViewState:
    return replace(state, progress=min(1.0, max(0.0, float(frac))))


# ----------------------------------------------------------------------------- render


def arrow(spec: MetricSpec, trend: Trend | None) -> Text:
    """↑ / ↓ / → coloured by whether that direction is bad for this metric."""
    d = 0 if trend is None else trend.direction
    if d == 0:
        return Text("→", style="dim")
    glyph = "↑" if d > 0 else "↓"
    if spec.bad_when_rising is None:
        return Text(glyph, style="yellow")
    bad = (d > 0) == spec.bad_when_rising
    return Text(glyph, style="bold red" if bad else "green")


def _clock(s: float) -> str:
    return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"


def _value_text(spec: MetricSpec, v: float | None) -> Text:
    if v is None:
        return Text("–", style="dim")
    style = ""
    if spec.band is not None:
        style = "green" if spec.band[0] <= v <= spec.band[1] else "yellow"
    return Text(spec.fmt.format(v) + (f" {spec.unit}" if spec.unit else ""), style=style)


def render(state: ViewState) -> RenderableType:
    """The whole live panel for one state (pure)."""
    info = state.info
    head = Text.assemble(
        (f"{info.runner_id}", "bold"), f"  run {info.run_id}  ·  sensor {info.sensor_id} "
        f"({info.placement})  ·  ", (_clock(state.t_s), "bold"), f"  ·  {state.steps} steps",
        (f"  ·  {state.activity}" if state.activity else ""),
    )
    metrics = Table(show_header=True, header_style="bold", expand=True, box=None)
    metrics.add_column("metric")
    metrics.add_column("now", justify="right")
    metrics.add_column("trend", justify="center")
    for spec in METRICS:
        v = state.value(spec.key)
        metrics.add_row(spec.label, _value_text(spec, v), arrow(spec, state.trend(spec.key)))
    alerts = Table(show_header=False, expand=True, box=None)
    alerts.add_column("alert")
    if not state.active:
        alerts.add_row(Text("no active alerts", style="green"))
    for a in state.active:
        colour = {"critical": "bold red", "warning": "yellow"}.get(a.severity, "cyan")
        alerts.add_row(Text.assemble((f"{a.severity.upper():8s}", colour),
                                     f" {_clock(a.t_s)} {a.message}"))
    for a in state.recent:
        if a.state == "cleared":
            alerts.add_row(Text(f"cleared  {_clock(a.t_s)} {a.kind}", style="dim"))
    parts: list[RenderableType] = [head, Panel(metrics, title="form"),
                                   Panel(alerts, title="alerts"), health_text(state.health)]
    if state.progress is not None:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=state.progress, width=40),
                    Text(progress_text(state)))
        parts.append(bar)
    return Panel(Group(*parts), title="sensord live", border_style="blue")


def health_text(h: SensorHealth | None) -> Text:
    """One line of sensor link health."""
    if h is None:
        return Text("sensor: no health report yet", style="dim")
    state = Text("connected", style="green") if h.connected else Text("DISCONNECTED",
                                                                       style="bold red")
    extra = f"  loss {h.packet_loss_pct:.1f} %  reconnects {h.reconnects}  gaps {h.gaps}"
    if h.latency_ms is not None:
        extra += f"  latency {h.latency_ms:.0f} ms"
    if h.battery_pct is not None:
        extra += f"  battery {h.battery_pct} %"
    return Text.assemble("sensor: ", state, extra)


def progress_text(state: ViewState) -> str:
    """``replay 42 % (12:34 of 30:00)``."""
    frac = state.progress or 0.0
    if state.total_s:
        return (f"replay {100 * frac:.0f} % ({_clock(frac * state.total_s)} of "
                f"{_clock(state.total_s)})")
    return f"replay {100 * frac:.0f} %"


def step_line(state: ViewState, s: Step) -> str:
    """The plain one-line form of a step."""

    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else fmt.format(v)

    side = {"left": "L", "right": "R"}.get(s.side or "", "?")
    return (f"{_clock(s.t_ic)} step {s.step_index:6d} {side} "
            f"cadence {f(s.cadence_spm, '{:.0f}')} spm  gct {f(s.gct_ms, '{:.0f}')} ms  "
            f"drop {f(s.pelvic_drop_deg, '{:.1f}')}°  "
            f"balance {f(s.gct_balance_pct, '{:.1f}')} %")


def alert_line(a: Alert) -> str:
    """The plain one-line form of an alert."""
    return f"{_clock(a.t_s)} ALERT {a.state} {a.severity} {a.kind}: {a.message}"


# ----------------------------------------------------------------------------- view


@dataclass(slots=True)
class LiveView:
    """The live view; use as a context manager around the run.

    Parameters
    ----------
    info
        The run being shown.
    total_s
        Length of a replay (for the progress line), or ``None`` for a live run.
    stream
        Where to draw (default ``sys.stdout``).
    plain
        Force the plain line-per-step output (default: when ``stream`` is not a TTY).
    console
        A rich console to draw on (tests pass one with a fixed width).
    min_interval_s
        Least time between two redraws of the rich view.
    clock
        Monotonic clock (seconds), for the redraw throttle.
    """

    info: RunInfo
    total_s: float | None = None
    stream: IO[str] | None = None
    plain: bool | None = None
    console: Console | None = None
    min_interval_s: float = 0.25
    clock: Callable[[], float] = time.monotonic
    state: ViewState = field(init=False)
    _live: Live | None = field(init=False, default=None)
    _last_draw: float = field(init=False, default=float("-inf"))
    _last_health: bool | None = field(init=False, default=None)
    _last_progress_decile: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self.state = ViewState(self.info, total_s=self.total_s)
        out = self.stream if self.stream is not None else sys.stdout
        self.stream = out
        if self.plain is None:
            isatty = getattr(out, "isatty", None)
            self.plain = not (callable(isatty) and isatty()) and self.console is None
        if self.console is None and not self.plain:
            self.console = Console(file=out)

    # -- context manager
    def __enter__(self) -> LiveView:
        if not self.plain:
            self._live = Live(render(self.state), console=self.console, auto_refresh=False,
                              transient=False, redirect_stdout=False, redirect_stderr=False)
            self._live.start(refresh=True)
        else:
            self._print(f"sensord: runner {self.info.runner_id} run {self.info.run_id} "
                        f"sensor {self.info.sensor_id} ({self.info.placement})")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.update(render(self.state), refresh=True)
            self._live.stop()
            self._live = None

    # -- events
    def on_step(self, step: Step) -> None:
        self.state = update_step(self.state, step)
        if self.plain:
            self._print(step_line(self.state, step))
        self._draw()

    def on_alert(self, alert: Alert) -> None:
        self.state = update_alert(self.state, alert)
        if self.plain:
            self._print(alert_line(alert))
        self._draw(force=True)

    def on_summary(self, summary: FormSummary) -> None:
        self.state = update_summary(self.state, summary)
        self._draw()

    def on_health(self, health: SensorHealth) -> None:
        self.state = update_health(self.state, health)
        if self.plain and health.connected != self._last_health:
            self._print(f"{_clock(health.t_s)} " + health_text(health).plain)
        self._last_health = health.connected
        self._draw(force=not health.connected)

    def on_progress(self, frac: float) -> None:
        self.state = update_progress(self.state, frac)
        decile = int((self.state.progress or 0.0) * 10)
        if self.plain and decile != self._last_progress_decile:
            self._print(progress_text(self.state))
        self._last_progress_decile = decile
        self._draw()

    # -- output
    def _print(self, line: str) -> None:
        assert self.stream is not None
        self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        if self._live is None:
            return
        now = self.clock()
        if force or now - self._last_draw >= self.min_interval_s:
            self._live.update(render(self.state), refresh=True)
            self._last_draw = now

    def renderable(self) -> Any:
        """The current rich renderable (for embedding in another layout)."""
        return render(self.state)
