"""Per-runner configuration: a validated TOML file (see ``configs/runner.example.toml``).

Every section and key is checked at start: an unknown key, a wrong type or an impossible
value (cadence band min above max, negative warm-up, pain threshold outside 0-10, ...)
raises :class:`~sensord.errors.InputError` naming the file, the key and the reason.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sensord.coaching.params import CoachParams, sensitivity_h
from sensord.coaching.protocol import IntervalPlan, plan_from_mapping
from sensord.errors import InputError
from sensord.model import PLACEMENTS, Placement

#: TOML section -> {TOML key: CoachParams field}
SECTIONS: dict[str, dict[str, str]] = {
    "targets": {"cadence_min_spm": "cadence_min_spm", "cadence_max_spm": "cadence_max_spm"},
    "baseline": {
        "warmup_s": "warmup_s", "window_s": "baseline_window_s",
        "min_blocks": "min_baseline_blocks",
    },
    "detectors": {
        "cusum_k": "cusum_k", "cusum_h": "cusum_h", "ewma_lambda": "ewma_lambda",
        "block_s": "block_s", "min_block_steps": "min_block_steps", "grace_s": "grace_s",
        "resume_grace_s": "resume_grace_s", "clear_z": "clear_z",
        "clear_hold_s": "clear_hold_s", "cooldown_s": "cooldown_s",
        "pace_model": "pace_model", "summary_every_s": "summary_every_s",
    },
    "thresholds": {
        "cadence_floor_pct": "cadence_floor_pct", "gct_floor_pct": "gct_floor_pct",
        "vo_floor_pct": "vo_floor_pct", "impact_floor_pct": "impact_floor_pct",
        "pelvic_drop_floor_deg": "pelvic_drop_floor_deg",
        "balance_floor_pct": "balance_floor_pct",
        "variability_floor_pct": "variability_floor_pct", "band_scale_spm": "band_scale_spm",
    },
    "run_start": {
        "first_strides": "first_strides", "settle_from_s": "settle_from_s",
        "settle_window_s": "settle_window_s", "ratio": "first_strides_ratio",
    },
    "pain": {"stop_score": "pain_stop_score"},
    "activity": {
        "run_min_cadence_spm": "run_min_cadence_spm", "run_min_flight_ms": "run_min_flight_ms",
        "still_after_s": "still_after_s", "switch_steps": "activity_switch_steps",
    },
}
_OTHER_SECTIONS = ("runner", "protocol")


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """A runner's validated settings."""

    runner_id: str
    placement: Placement | None
    params: CoachParams
    protocol: IntervalPlan | None = None


def _type_of(name: str) -> type:
    for f in fields(CoachParams):
        if f.name == name:
            return {"float": float, "int": int, "str": str}.get(str(f.type), str)
    raise KeyError(name)


def config_from_mapping(doc: dict[str, Any], source: str = "<config>") -> RunnerConfig:
    """Validate a parsed TOML document (``source`` names it in errors)."""

    def fail(key: str, reason: str) -> InputError:
        return InputError(f"{source}: {key}: {reason}")

    allowed_sections = (*SECTIONS, *_OTHER_SECTIONS)
    kwargs: dict[str, Any] = {}
    where: dict[str, str] = {}
    for section, body in doc.items():
        if section not in allowed_sections:
            raise fail(section, f"unknown section (allowed: {', '.join(allowed_sections)})")
        if not isinstance(body, dict):
            raise fail(section, "must be a table, e.g. [" + section + "]")
    runner = doc.get("runner", {})
    for key in runner:
        if key not in ("id", "placement"):
            raise fail(f"runner.{key}", "unknown key (allowed: id, placement)")
    runner_id = runner.get("id", "runner")
    if not isinstance(runner_id, str) or not runner_id.strip():
        raise fail("runner.id", f"must be a non-empty string, got {runner_id!r}")
    placement = runner.get("placement")
    if placement is not None and placement not in PLACEMENTS:
        raise fail("runner.placement", f"must be one of {', '.join(PLACEMENTS)}, "
                                       f"got {placement!r}")
    for section, table in SECTIONS.items():
        body = doc.get(section, {})
        extra = set(body) - set(table) - ({"sensitivity"} if section == "detectors" else set())
        if extra:
            key = sorted(extra)[0]
            raise fail(f"{section}.{key}",
                       f"unknown key (allowed: {', '.join(sorted(table))})")
        if section == "detectors" and "sensitivity" in body:
            if "cusum_h" in body:
                raise fail("detectors.sensitivity", "give sensitivity or cusum_h, not both")
            try:
                kwargs["cusum_h"] = sensitivity_h(str(body["sensitivity"]))
            except ValueError as e:
                raise fail("detectors.sensitivity", str(e)) from None
            where["cusum_h"] = "detectors.sensitivity"
        for key, name in table.items():
            if key not in body:
                continue
            v = body[key]
            want = _type_of(name)
            if want is float:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise fail(f"{section}.{key}", f"must be a number, got {v!r}")
                try:
                    v = float(v)
                except OverflowError:
                    raise fail(f"{section}.{key}",
                               f"a {len(str(v))}-digit number is out of range") from None
            elif want is int:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise fail(f"{section}.{key}", f"must be an integer, got {v!r}")
            elif not isinstance(v, str):
                raise fail(f"{section}.{key}", f"must be a string, got {v!r}")
            kwargs[name] = v
            where[name] = f"{section}.{key}"
    try:
        params = CoachParams(**kwargs)
    except ValueError:
        probe = object.__new__(CoachParams)
        defaults = CoachParams()
        for f in fields(CoachParams):
            object.__setattr__(probe, f.name, kwargs.get(f.name, getattr(defaults, f.name)))
        name, reason = probe.problems()[0]
        raise fail(where.get(name, name), reason) from None
    protocol = None
    if "protocol" in doc:
        try:
            protocol = plan_from_mapping(doc["protocol"])
        except ValueError as e:
            raise fail("protocol", str(e)) from None
    return RunnerConfig(runner_id.strip(), placement, params, protocol)


def load_config(path: str | Path) -> RunnerConfig:
    """Read and validate a runner's TOML file.

    Raises
    ------
    InputError
        Missing file, TOML syntax error (with line/column), unknown key, wrong type or
        impossible value, always naming the file and the key.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read runner config: {e.strerror or e}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{p}: runner config is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{p}: TOML syntax error: {e}") from None
    return config_from_mapping(doc, str(p))
