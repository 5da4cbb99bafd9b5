"""Accuracy of the foot detector on the real gaitmap recording (Vicon reference).

Run from the repository root::

    python benchmarks/bench_foot_realdata.py

Prints, per file (rotated / not rotated / randomly rotated), per mode (with gyro /
accelerometer only) and per foot: contacts matched / missed / extra, cadence error,
GCT mean absolute error and bias, IC and TC timing mean absolute error, and the
throughput of the detector. The reference (``stride_events_sample.csv``) gives per
foot the heel strikes ``pre_ic`` / ``ic`` and toe-offs ``tc`` in samples at 204.8 Hz;
stance = ``tc - pre_ic``; cadence = 120 / mean stride time.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sensord.gait.foot import FootParams, finish_foot, init_foot, step_foot  # noqa: E402
from sensord.gait.grid import UniformBlock  # noqa: E402
from sensord.model import Side, Step  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "foot_walking_gaitmap"
RATE_HZ = 204.8
MATCH_S = 0.150
FEET: tuple[Side, Side] = ("left", "right")


@dataclass(frozen=True)
class Reference:
    """Reference contacts of one foot, seconds."""

    ic_s: np.ndarray  # every heel strike (pre_ic and the last ic)
    tc_s: np.ndarray  # toe-off after each pre_ic, NaN where unknown
    cadence_spm: float


@dataclass(frozen=True)
class Score:
    """Accuracy of one run against the reference of one foot.

    ``cadence_err_spm`` compares like with like: 120 / mean stride time over the
    reference strides whose two heel strikes were both matched, detected minus
    reference. ``output_cadence_err_spm`` is the median of the detector's
    own ``cadence_spm`` minus the reference cadence (it also counts contacts that the
    reference strides skip, such as the turning step). ``extra_confirmed`` counts the
    extra contacts during which the motion-capture foot markers stood still (real
    contacts missing from the reference strides).
    """

    matched: int
    missed: int
    extra: int
    extra_confirmed: int
    cadence_err_spm: float
    output_cadence_err_spm: float
    gct_mae_ms: float
    gct_bias_ms: float
    ic_mae_ms: float
    tc_mae_ms: float


def load_imu(rotated: bool = True) -> dict[str, np.ndarray]:
    """``{foot: (n, 6) acc m/s^2, gyr deg/s}`` from one of the two IMU files."""
    name = "imu_sample.csv" if rotated else "imu_sample_not_rotated.csv"
    a = np.loadtxt(DATA / name, delimiter=",", skiprows=2)[:, 1:]
    if rotated:  # columns interleave the feet: L acc_x, R acc_x, L acc_y, ...
        return {"left": a[:, 0::2].copy(), "right": a[:, 1::2].copy()}
    return {"left": a[:, :6].copy(), "right": a[:, 6:12].copy()}


def load_reference() -> dict[Side, Reference]:
    ev = np.genfromtxt(DATA / "stride_events_sample.csv", delimiter=",", names=True,
                       dtype=None, encoding=None)
    out: dict[Side, Reference] = {}
    for foot in FEET:
        e = ev[ev["foot"] == foot]
        pre, ic, tc = (e[k].astype(float) for k in ("pre_ic", "ic", "tc"))
        ics = np.unique(np.concatenate([pre, ic]))
        tcs = np.full(ics.shape, np.nan)
        for p, t in zip(pre, tc, strict=True):
            tcs[np.searchsorted(ics, p)] = t
        stride = (ic - pre) / RATE_HZ
        out[foot] = Reference(ics / RATE_HZ, tcs / RATE_HZ, 120.0 / float(stride.mean()))
    return out


def run(data: np.ndarray, gyro: bool, block_len: int | None = None,
        params: FootParams | None = None, side: Side | None = None) -> list[Step]:
    """Feed ``(n, 6)`` samples to the detector in blocks of ``block_len`` samples."""
    p = params or FootParams(sensor_side=side)
    st = init_foot(p, RATE_HZ)
    n = data.shape[0]
    bl = block_len or n
    steps: list[Step] = []
    for s in range(0, n, bl):
        blk = UniformBlock(s, RATE_HZ, data[s:s + bl, :3],
                           data[s:s + bl, 3:] if gyro else None, reset=False)
        st, out = step_foot(p, st, blk)
        steps.extend(out)
    st, out = finish_foot(p, st)
    steps.extend(out)
    return steps


def load_foot_speed() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per foot ``(t_s, speed_mps)``: the slower of the heel and toe markers (100 Hz)."""
    m = np.loadtxt(DATA / "mocap_sample.csv", delimiter=",", skiprows=2)
    cols = {"L_TOE": 1, "R_TOE": 4, "L_FCC": 7, "R_FCC": 10}
    t = np.arange(m.shape[0]) / 100.0
    out = {}
    for foot, k in (("left", "L"), ("right", "R")):
        speeds = []
        for marker in (f"{k}_TOE", f"{k}_FCC"):
            xyz = m[:, cols[marker]:cols[marker] + 3] / 1000.0
            speeds.append(np.linalg.norm(np.gradient(xyz, 0.01, axis=0), axis=1))
        out[foot] = (t, np.minimum(*speeds))
    return out


def latencies_ms(data: np.ndarray, gyro: bool, block_s: float = 0.01) -> list[float]:
    """Stream in ``block_s`` blocks; time from each toe-off to the block reporting it."""
    p = FootParams()
    st = init_foot(p, RATE_HZ)
    bl = max(1, round(block_s * RATE_HZ))
    out: list[float] = []
    for s in range(0, data.shape[0], bl):
        blk = UniformBlock(s, RATE_HZ, data[s:s + bl, :3], data[s:s + bl, 3:] if gyro else None)
        st, steps = step_foot(p, st, blk)
        t_now = (s + blk.acc_mps2.shape[0]) / RATE_HZ
        out += [(t_now - x.t_fc) * 1000.0 for x in steps if x.t_fc is not None]
    return out


def score(steps: list[Step], ref: Reference,
          foot_speed: tuple[np.ndarray, np.ndarray] | None = None) -> Score:
    """Match detected to reference contacts by nearest IC within +/- 150 ms."""
    det_ic = np.array([s.t_ic for s in steps])
    lo, hi = ref.ic_s[0] - MATCH_S, ref.ic_s[-1] + MATCH_S
    inside = [(i, s) for i, s in enumerate(steps) if lo <= s.t_ic <= hi]
    used: set[int] = set()
    gct_err, ic_err, tc_err = [], [], []
    matched = 0
    for k, r_ic in enumerate(ref.ic_s):
        if det_ic.size == 0:
            break
        d = np.abs(det_ic - r_ic)
        j = int(np.argmin(d))
        if d[j] > MATCH_S or j in used:
            continue
        used.add(j)
        matched += 1
        s = steps[j]
        ic_err.append(s.t_ic - r_ic)
        if np.isfinite(ref.tc_s[k]) and s.t_fc is not None:
            tc_err.append(s.t_fc - ref.tc_s[k])
            gct_err.append((s.t_fc - s.t_ic) - (ref.tc_s[k] - r_ic))
    extras = [s for i, s in inside if i not in used]
    confirmed = 0
    if foot_speed is not None:
        t, v = foot_speed
        for s in extras:
            if s.t_fc is not None:
                mid = (t >= s.t_ic + 0.25 * (s.t_fc - s.t_ic)) & (t <= s.t_fc - 0.25 * (
                    s.t_fc - s.t_ic))
                confirmed += int(mid.any() and float(v[mid].min()) < 0.1)
    # like-for-like cadence: detected stride times over the reference strides
    pair = {}
    for k, r_ic in enumerate(ref.ic_s):
        d = np.abs(det_ic - r_ic) if det_ic.size else np.array([np.inf])
        j = int(np.argmin(d))
        if d[j] <= MATCH_S:
            pair[k] = det_ic[j]
    ref_pairs = [(k, k + 1) for k in range(len(ref.ic_s) - 1)
                 if np.isfinite(ref.tc_s[k])]
    both = [(a, b) for a, b in ref_pairs if a in pair and b in pair]
    strides = [pair[b] - pair[a] for a, b in both]
    ref_strides = [ref.ic_s[b] - ref.ic_s[a] for a, b in both]
    cad_err = (120.0 / float(np.mean(strides)) - 120.0 / float(np.mean(ref_strides))
               if strides else float("nan"))
    outs = [s.cadence_spm for _, s in inside if s.cadence_spm is not None]
    out_cad = float(np.median(outs)) if outs else float("nan")
    g = np.array(gct_err) * 1000.0
    return Score(
        matched=matched, missed=len(ref.ic_s) - matched, extra=len(extras),
        extra_confirmed=confirmed, cadence_err_spm=cad_err,
        output_cadence_err_spm=out_cad - ref.cadence_spm,
        gct_mae_ms=float(np.mean(np.abs(g))) if g.size else float("nan"),
        gct_bias_ms=float(np.mean(g)) if g.size else float("nan"),
        ic_mae_ms=float(np.mean(np.abs(ic_err))) * 1000.0 if ic_err else float("nan"),
        tc_mae_ms=float(np.mean(np.abs(tc_err))) * 1000.0 if tc_err else float("nan"),
    )


def random_rotation(seed: int) -> np.ndarray:
    """A uniformly random rotation matrix (QR of a Gaussian matrix, det +1)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return np.asarray(q)


def rotate(data: np.ndarray, rot: np.ndarray) -> np.ndarray:
    out = data.copy()
    out[:, :3] = data[:, :3] @ rot.T
    out[:, 3:] = data[:, 3:] @ rot.T
    return out


def main() -> None:
    if not DATA.is_dir():
        print(f"no reference data at {DATA}; nothing to do")
        return
    ref = load_reference()
    sets = {"rotated": load_imu(True), "not_rotated": load_imu(False)}
    sets["random_rot"] = {f: rotate(d, random_rotation(i + 7))
                          for i, (f, d) in enumerate(sets["rotated"].items())}
    speed = load_foot_speed()
    hdr = (f"{'file':12s} {'mode':5s} {'foot':5s} {'match':>5s} {'miss':>4s} {'extra':>5s} "
           f"{'(mocap)':>7s} {'cad_err':>7s} {'out_cad':>7s} {'gct_mae':>7s} {'gct_bias':>8s} "
           f"{'ic_mae':>6s} {'tc_mae':>6s}")
    print(hdr)
    for name, feet in sets.items():
        for gyro in (True, False):
            for foot in FEET:
                s = score(run(feet[foot], gyro, side=foot), ref[foot], speed[foot])
                print(f"{name:12s} {'gyro' if gyro else 'acc':5s} {foot:5s} {s.matched:5d} "
                      f"{s.missed:4d} {s.extra:5d} {s.extra_confirmed:7d} "
                      f"{s.cadence_err_spm:7.2f} {s.output_cadence_err_spm:7.2f} "
                      f"{s.gct_mae_ms:7.1f} {s.gct_bias_ms:8.1f} {s.ic_mae_ms:6.1f} "
                      f"{s.tc_mae_ms:6.1f}")
    for gyro in (True, False):
        lat = []
        for foot in FEET:
            lat += latencies_ms(sets["rotated"][foot], gyro)
        q = np.percentile(lat, [50, 90])
        print(f"report latency after toe-off, 10 ms blocks ({'gyro' if gyro else 'acc'}): "
              f"median {q[0]:.0f} ms, 90th percentile {q[1]:.0f} ms")
    big = np.tile(sets["rotated"]["left"], (100, 1))
    for gyro in (True, False):
        t0 = time.process_time()
        run(big, gyro, block_len=20_000)
        dt = time.process_time() - t0
        mode = "gyro" if gyro else "acc"
        print(f"throughput ({mode}): {big.shape[0] / dt / 1e6:.2f} M samples/s")


if __name__ == "__main__":
    main()
