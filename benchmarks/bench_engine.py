"""Gait engine speed and memory (a benchmark script, not a test).

Prints:
- ``sensord analyze`` wall time on a one-hour 200 Hz six-axis recording, file reading
  included (target < 2 s on a 2-core machine);
- the streaming core's speed in multiples of real time (CPU time), fed 60 s blocks
  (offline), 1 s blocks and 20 ms blocks (a live BLE stream: one block per
  notification) (target >= 20,000x);
- peak memory (max RSS) of a six-hour run streamed through the engine in 1 s blocks
  (target < 200 MB), against a 10-minute run: bounded state means they are equal.

Usage: ``python benchmarks/bench_engine.py [--minutes 60]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The checkout this script belongs to: measured in-process and in the subprocesses,
#: whatever ``sensord`` an editable install elsewhere points at.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import resource, sys
from sensord.gait.engine import EngineParams, init_state, step, finish
from sensord.sources.simulator import SimParams, iter_simulated_blocks
params = EngineParams()
state = init_state(params)
n = 0
for blk, _ in iter_simulated_blocks(SimParams(duration_s=float(sys.argv[1])), 1, 1.0):
    state, ev = step(params, state, blk)
    n += sum(1 for e in ev if type(e).__name__ == "Step")
state, ev = finish(params, state)
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--memory-hours", type=float, default=6.0)
    args = ap.parse_args()

    from sensord.gait.engine import EngineParams, analyze, steps_only
    from sensord.sources.recording import iter_blocks, write_recording
    from sensord.sources.simulator import SimParams, simulate

    res = simulate(SimParams(duration_s=args.minutes * 60.0, mount="random"), seed=1)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hour.csv"
        write_recording(path, res.samples, {"placement": "pelvis"})
        size_mb = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "sensord.cli", "analyze", str(path),
                            "--placement", "pelvis", "--out", str(Path(d) / "s.jsonl")],
                           capture_output=True, text=True, check=True, cwd=ROOT)
        wall = time.perf_counter() - t0
    print(f"sensord analyze, {args.minutes:.0f} min at 200 Hz, 6 axes ({size_mb:.0f} MB CSV): "
          f"{wall:.2f} s wall, process start and file reading included ({r.stderr.strip()})")

    params = EngineParams()
    for block_s, minutes in ((60.0, args.minutes), (1.0, args.minutes),
                             (0.02, min(args.minutes, 10.0))):
        part = res.samples.slice(0, round(minutes * 60.0 * 200))
        blocks = list(iter_blocks(part, round(200 * block_s)))
        t0 = time.process_time()
        steps = steps_only(analyze(params, blocks))
        core = time.process_time() - t0
        print(f"streaming core, {block_s:g} s blocks: {core:.2f} s CPU for "
              f"{minutes:.0f} min = {minutes * 60.0 / core:,.0f}x real time, "
              f"{core / len(blocks) * 1e6:,.0f} us per block ({len(steps)} steps)")

    for label, dur in (("10 min", 600.0), (f"{args.memory_hours:g} h", args.memory_hours * 3600)):
        out = subprocess.run([sys.executable, "-c", CHILD, str(dur)], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout.split()
        print(f"peak memory streaming a {label} run: {float(out[1]):.0f} MB ({out[0]} steps)")


if __name__ == "__main__":
    main()
