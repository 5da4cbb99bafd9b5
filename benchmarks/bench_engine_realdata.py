"""The gait engine on the real lower-back reference recordings (walking).

Prints, per reference walking bout: reference steps, missed and extra detections,
initial-contact timing MAE and bias against the optical reference, cadence (mean of
60/interval) from the engine and from the reference, and side agreement. Then, as
context for the free-living circuit (Test11), the IC MAE of the engine and of the
optical reference against the second reference system (INDIP): where the two
references disagree by 30-60 ms, no estimate can be measured to 30 ms against either.

Usage: ``python benchmarks/bench_engine_realdata.py`` (needs ../shared/data).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from realdata import MISSING, lowerback_trials, match

from sensord.gait.engine import EngineParams, analyze, steps_only


def main() -> int:
    print(f"{'trial':26s} {'bout s':>10s} {'ref':>4s} {'miss':>4s} {'extra':>5s} "
          f"{'IC MAE':>7s} {'bias':>6s} {'cad':>6s} {'ref cad':>7s} {'side':>5s}")
    agreement = []
    for test in ("Test5", "Test11"):
        trials = lowerback_trials((test,))
        if trials is None:
            print(MISSING)
            return 1
        for trial in trials:
            steps = steps_only(analyze(EngineParams(placement="pelvis"), trial.samples))
            ic = np.array([s.t_ic for s in steps])
            side = np.array([s.side for s in steps])
            for b in trial.bouts:
                w = (ic >= b.ic_s[0] - 0.25) & (ic <= b.ic_s[-1] + 0.25)
                err, missed, extra = match(ic[w], b.ic_s, 0.25)
                cad = np.mean(60 / np.diff(ic[w])) if w.sum() > 2 else float("nan")
                ref = np.mean(60 / np.diff(b.ic_s))
                ok = np.mean(side[w] == np.where(b.ic_left, "left", "right")) if (
                    w.sum() == b.ic_s.size) else float("nan")
                print(f"{trial.name:26s} {b.start_s:5.0f}-{b.end_s:<4.0f} {b.ic_s.size:4d} "
                      f"{missed:4d} {extra:5d} {np.mean(np.abs(err)) * 1e3:5.0f}ms "
                      f"{np.mean(err) * 1e3:4.0f}ms {cad:6.1f} {ref:7.1f} {ok:5.0%}")
                if test == "Test11":
                    agreement.append((trial, b, ic[w]))
    print(f"\n{'Test11 vs INDIP':26s} {'bout s':>10s} {'INDIP':>5s} "
          f"{'engine: MAE miss extra':>22s} {'optical: MAE miss extra':>24s}")
    for trial, b, mine in agreement:
        ind = trial.indip_ic_s
        ind = ind[(ind >= b.ic_s[0] - 0.25) & (ind <= b.ic_s[-1] + 0.25)]
        if ind.size < 3:
            continue
        e1, m1, x1 = match(mine, ind, 0.25)
        e2, m2, x2 = match(b.ic_s, ind, 0.25)
        print(f"{trial.name:26s} {b.start_s:5.0f}-{b.end_s:<4.0f} {ind.size:5d} "
              f"{np.mean(np.abs(e1)) * 1e3:10.0f}ms {m1:4d} {x1:5d} "
              f"{np.mean(np.abs(e2)) * 1e3:11.0f}ms {m2:4d} {x2:5d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
