"""Loaders for the real reference recordings in ../shared/data (see its README).

Used by the real-data tests and by benchmarks/bench_engine_realdata.py. Every loader
returns None where the folder is absent, so callers can skip with a clear reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensord.model import GRAVITY_MPS2, FloatArray, SampleBlock

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LOWERBACK = DATA / "lowerback_walking_mobgap"
FOOT = DATA / "foot_walking_gaitmap"
MISSING = f"real reference data not found at {DATA} (only present beside the project in CI)"


@dataclass(frozen=True, eq=False)
class Bout:
    start_s: float
    end_s: float
    ic_s: FloatArray  # reference initial contacts (finite only)
    ic_left: list[bool]
    cadence_field_spm: float


@dataclass(frozen=True, eq=False)
class LowerBackTrial:
    name: str
    samples: SampleBlock
    bouts: list[Bout]
    #: every finite initial contact of the second reference system (INDIP, a multi-sensor
    #: wearable), to show how far the two references agree
    indip_ic_s: FloatArray


def lowerback_trials(tests: tuple[str, ...] = ("Test5",)) -> list[LowerBackTrial] | None:
    """Lower-back trials with optical (Stereophoto) reference bouts."""
    if not LOWERBACK.is_dir():
        return None
    import scipy.io as sio

    out: list[LowerBackTrial] = []
    for mat in sorted(LOWERBACK.glob("*/*/data.mat")):
        who = f"{mat.parent.parent.name}/{mat.parent.name}"
        data = sio.loadmat(mat, squeeze_me=True, struct_as_record=False)["data"]
        for test in tests:
            tests_struct = getattr(data.TimeMeasure1, test)
            for trial in tests_struct._fieldnames:
                tri = getattr(tests_struct, trial)
                su = tri.SU.LowerBack
                acc = np.asarray(su.Acc, dtype=np.float64) * GRAVITY_MPS2
                gyr = np.asarray(su.Gyr, dtype=np.float64)
                # reference times are seconds from the first sample; sample i is at
                # (i + 1) / fs (README: index = round(t * 100) - 1)
                t = (np.arange(acc.shape[0]) + 1) / float(su.Fs.Acc)
                bouts: list[Bout] = []
                mw = tri.Standards.Stereophoto.MicroWB
                for b in (mw if isinstance(mw, np.ndarray) else [mw]):
                    ic = np.atleast_1d(b.InitialContact_Event).astype(float)
                    lr = np.atleast_1d(b.InitialContact_LeftRight)
                    ok = np.isfinite(ic)
                    if ok.sum() < 3:
                        continue
                    bouts.append(Bout(float(b.Start), float(b.End), ic[ok],
                                      [str(s).lower().startswith("l") for s in lr[ok]],
                                      float(np.nanmean(np.atleast_1d(b.Cadence)))))
                if bouts:
                    out.append(LowerBackTrial(f"{who} {test} {trial}",
                                              SampleBlock(t, acc, gyr), bouts,
                                              _all_ics(tri.Standards, "INDIP")))
    return out


def _all_ics(standards: object, system: str) -> FloatArray:
    """Every finite initial contact of one reference system (empty if it has none)."""
    ref = getattr(standards, system, None)
    if ref is None:
        return np.empty(0)
    mw = ref.MicroWB
    ics = [np.atleast_1d(b.InitialContact_Event).astype(float)
           for b in (mw if isinstance(mw, np.ndarray) else [mw])]
    ic = np.concatenate(ics) if ics else np.empty(0)
    return np.sort(ic[np.isfinite(ic)])


def median_cadence_spm(ic_s: FloatArray) -> float:
    """60 / median interval between consecutive initial contacts."""
    return float(60.0 / np.median(np.diff(np.sort(ic_s))))


def match(detected: FloatArray, reference: FloatArray,
          tolerance_s: float) -> tuple[FloatArray, int, int]:
    """Nearest-neighbour one-to-one matching: (errors of matched, missed, extra)."""
    errors: list[float] = []
    used: set[int] = set()
    for r in reference:
        if detected.size == 0:
            break
        j = int(np.argmin(np.abs(detected - r)))
        if abs(detected[j] - r) <= tolerance_s and j not in used:
            used.add(j)
            errors.append(float(detected[j] - r))
    missed = len(reference) - len(errors)
    extra = detected.size - len(used)
    return np.array(errors), missed, extra


def lowerback_final_contacts(trial_name: str) -> tuple[FloatArray, list[str], FloatArray, list[str]]:
    """Reference (IC times, IC sides, FC times, FC sides) of a Test5 trial's first bout."""
    import scipy.io as sio

    who, _, trial = trial_name.split()
    data = sio.loadmat(LOWERBACK / who / "data.mat", squeeze_me=True,
                       struct_as_record=False)["data"]
    b = getattr(data.TimeMeasure1.Test5, trial).Standards.Stereophoto.MicroWB
    return (np.atleast_1d(b.InitialContact_Event).astype(float),
            [str(x) for x in np.atleast_1d(b.InitialContact_LeftRight)],
            np.atleast_1d(b.FinalContact_Event).astype(float),
            [str(x) for x in np.atleast_1d(b.FinalContact_LeftRight)])
