"""``sensord analyze RECORDING --placement pelvis|foot [--out FILE]``.

Feeds a recording block by block through the same streaming engine used live and
writes JSON Lines, one object per detected step (pelvis) or foot contact (foot).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO, cast

from sensord.errors import InputError
from sensord.gait.engine import EngineParams, analyze
from sensord.model import PLACEMENTS, SIDES, Gap, Placement, Side, Step
from sensord.sources.recording import read_recording

HELP = "per-step metrics of a recording (JSON Lines)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", help="CSV recording (t, ax, ay, az[, gx, gy, gz])")
    p.add_argument("--placement", choices=PLACEMENTS,
                   help="sensor placement (default: the recording's '# placement=' comment)")
    p.add_argument("--side", choices=SIDES,
                   help="foot placement: which shoe (default: '# sensor_side=' comment)")
    p.add_argument("--out", help="output JSON Lines file (default: stdout)")
    p.add_argument("--block-s", type=float, default=60.0,
                   help="block length fed to the streaming engine (default 60 s; results "
                        "do not depend on it)")


def run(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).resolve() == Path(args.recording).resolve():
        raise InputError(f"--out {args.out}: is the recording itself; write the steps to "
                         "another file")
    rec = read_recording(args.recording)
    placement = args.placement or rec.metadata.get("placement")
    if placement not in PLACEMENTS:
        raise InputError(
            f"{args.recording}: placement unknown ({placement!r}); "
            "pass --placement pelvis|foot or add a '# placement=pelvis' comment line")
    side = args.side or rec.metadata.get("sensor_side") or None
    if side is not None and side not in SIDES:
        raise InputError(f"{args.recording}: '# sensor_side={side}' is not left or right; "
                         "fix the comment or pass --side")
    if not 0.001 <= args.block_s <= 3600:
        raise InputError(f"--block-s {args.block_s}: must be between 0.001 and 3600 s")
    params = EngineParams(placement=cast(Placement, placement),
                          sensor_side=cast(Side | None, side))
    events = analyze(params, rec.samples, block_s=args.block_s)
    steps = [e for e in events if isinstance(e, Step)]
    gaps = [e for e in events if isinstance(e, Gap)]
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as fh:
                _write(fh, steps)
        except OSError as e:
            raise InputError(f"--out {args.out}: cannot write ({e.strerror}); check the path "
                             "and permissions") from None
    else:
        _write(sys.stdout, steps)
    cad = sorted(s.cadence_spm for s in steps if s.cadence_spm is not None)
    gct = sorted(s.gct_ms for s in steps if s.gct_ms is not None)
    print(f"sensord analyze: {len(steps)} {'steps' if placement == 'pelvis' else 'contacts'}, "
          f"{len(gaps)} gaps, median cadence "
          f"{cad[len(cad) // 2]:.1f} spm, median GCT {gct[len(gct) // 2]:.0f} ms"
          if cad and gct else f"sensord analyze: {len(steps)} steps, {len(gaps)} gaps",
          file=sys.stderr)
    return 0


def _write(fh: TextIO, steps: list[Step]) -> None:
    encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder for all lines
    fh.writelines(encode(s.to_dict()) + "\n" for s in steps)
