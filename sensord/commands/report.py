"""``sensord report RUN``: a self-contained HTML report of one run.

RUN is either a recording (CSV; the gait engine and coaching detectors run over it), the
``<run_id>.jsonl`` file ``sensord run`` keeps, or a run id: with ``--influx-url`` one
stored by ``sensord ingest``, with ``--store`` one in a local store (a SQLite store file,
or the ``sensord run --store`` directory). The database token comes
from ``SENSORD_INFLUX_TOKEN`` or ``--influx-token-file`` (never a flag).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sensord.errors import InputError, ServiceError

if TYPE_CHECKING:
    from sensord.coaching.params import CoachParams

HELP = "self-contained HTML report of a run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``sensord report``."""
    a = parser.add_argument
    a("run", metavar="RUN",
      help="recording CSV, a run file RUN_ID.jsonl, or a run id with --influx-url / --store")
    a("-o", "--output", help="HTML file to write (default RUN_ID.html; '-' for stdout)")
    a("--influx-url", help="read the run from InfluxDB (1.x, or 2.x via DBRP) at this URL")
    a("--store", type=Path,
      help="read the run from a local store: SQLite file, or sensord run's directory")
    a("--db", default="sensord", help="InfluxQL database (default sensord)")
    a("--influx-token-file", type=Path,
      help="file holding the database token or user:password (else $SENSORD_INFLUX_TOKEN)")
    a("--config", help="the runner's TOML config (as for sensord run): coaching targets "
                       "and thresholds, runner name and return-to-run plan")
    a("--runner", help="runner name for a recording without metadata (default: the "
                       "config's, else 'runner')")
    a("--pain", action="append", default=[], metavar="MM:SS=SCORE[ LOCATION]",
      help="pain report for a recording, e.g. '25:00=4 left knee' (repeatable)")
    a("--plan", help="return-to-run plan for the compliance table, "
                     "e.g. '1 min run / 2 min walk x 8'")


def _token(path: Path | None) -> str | None:
    if path is not None:
        try:
            return path.read_text().strip() or None
        except OSError as e:
            raise InputError(f"cannot read --influx-token-file {path}: {e.strerror}") from None
    value = os.environ.get("SENSORD_INFLUX_TOKEN", "").strip()
    return value or None


#: A ``--pain`` time ``MM:SS`` (seconds 0-59, a fraction allowed).
_MM_SS_RE = re.compile(r"(?P<mm>[0-9]+):(?P<ss>[0-5]?[0-9](?:\.[0-9]+)?)")


def _parse_pain_arg(text: str) -> tuple[float, str]:
    """``'25:00=4 left knee'`` -> (run time in seconds, ``'4 left knee'``).

    Raises
    ------
    InputError
        No ``=SCORE``, or a time that is not ``MM:SS`` (seconds 0-59) or seconds >= 0.
    """
    when, sep, what = text.partition("=")
    if not sep or not what.strip():
        raise InputError(f"--pain {text!r}: write MM:SS=SCORE, e.g. '25:00=4 left knee'")
    m = _MM_SS_RE.fullmatch(when.strip())
    t = math.nan
    if m is not None:
        t = int(m["mm"]) * 60 + float(m["ss"])
    elif ":" not in when:
        with contextlib.suppress(ValueError):
            t = float(when)
    if not math.isfinite(t) or t < 0:
        raise InputError(f"--pain {text!r}: time {when!r} is not MM:SS (seconds 0-59) or "
                         "seconds >= 0, e.g. '25:00=4 left knee'")
    return t, what.strip()


def _refuse_overwriting(out: str, inputs: list[Path | None]) -> None:
    """Raise :class:`InputError` when the report would be written over one of ``inputs``."""
    if out == "-":
        return
    for inp in inputs:
        try:
            same = inp is not None and inp.is_file() and os.path.samefile(out, inp)
        except OSError:  # (out, or this input, is missing or out of reach: not the same)
            continue
        if same:
            raise InputError(f"the report would overwrite its input {inp} (output {out}); "
                             "give another -o FILE.html")


def _config(args: argparse.Namespace) -> tuple[CoachParams | None, str, str | None]:
    """Coaching parameters (``None``: defaults), runner name and plan from the flags and
    the runner's config; flags win."""
    runner, plan = args.runner, args.plan
    if not args.config:
        return None, runner or "runner", plan
    from sensord.coaching.config import load_config

    cfg = load_config(args.config)
    if plan is None and cfg.protocol is not None:
        plan = cfg.protocol.text  # (the text form parse_plan reads, either TOML form)
    return cfg.params, runner or cfg.runner_id or "runner", plan


def run(args: argparse.Namespace) -> int:
    """Build the report and write it."""
    from sensord.report import build_report
    from sensord.report.data import (
        InfluxQL,
        from_influx,
        from_jsonl,
        from_recording,
        from_store,
    )

    if args.influx_url and args.store:
        raise InputError("give either --influx-url or --store, not both")
    if (args.influx_url or args.store) and args.pain:
        raise InputError("--pain applies to recordings; stored runs carry their reports")
    inputs = [Path(args.run), args.store, args.store and args.store / f"{args.run}.jsonl",
              args.influx_token_file, Path(args.config) if args.config else None]
    if args.output is not None:
        _refuse_overwriting(args.output, inputs)  # (before the slow analysis)
    coach, runner, plan = _config(args)
    if plan is not None:
        from sensord.coaching.protocol import parse_plan

        try:
            parse_plan(plan)  # fail before the (slow) analysis
        except ValueError as e:
            raise InputError(f"--plan: {e}") from None
    if args.store and Path(args.store).is_dir():
        run_file = Path(args.store) / f"{args.run}.jsonl"
        if not run_file.is_file():
            known = sorted(p.stem for p in Path(args.store).glob("*.jsonl"))[-10:]
            raise ServiceError(f"run {args.run!r} is not in {args.store}; runs there: "
                               f"{', '.join(known) or 'none'}")
        data = from_jsonl(run_file)
    elif args.store:
        data = from_store(args.store, args.run)
    elif args.influx_url:
        client = InfluxQL(args.influx_url, args.db, _token(args.influx_token_file))
        data = from_influx(client, args.run)
    else:
        path = Path(args.run)
        if path.suffix == ".jsonl" and path.is_file():
            data = from_jsonl(path)
        elif not path.is_file():
            raise InputError(
                f"{args.run}: no such recording; to report a stored run, add "
                "--influx-url URL (and --db NAME) or --store FILE")
        else:
            from sensord.coaching.pain import parse_pain

            pain = [parse_pain(what, t) for t, what in map(_parse_pain_arg, args.pain)]
            data = from_recording(path, pain=pain, runner=runner, coach=coach)
    if coach is not None:  # (a stored run keeps the alerts it was given live)
        data = dataclasses.replace(data, coach=coach)
    html = build_report(data, plan_text=plan)
    out = args.output or f"{data.info.run_id}.html"
    _refuse_overwriting(out, inputs)
    if out == "-":
        sys.stdout.write(html)
        return 0
    try:
        Path(out).write_text(html, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror}") from None
    raised = sum(a.state == "raised" for a in data.alerts)
    print(f"wrote {out} ({len(data.steps)} steps, {raised} alerts)", file=sys.stderr)
    return 0
