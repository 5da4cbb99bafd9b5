"""The ``sensord`` command line: a thin dispatcher.

Each sub-command lives in its own module under :mod:`sensord.commands` with
``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their command runs, so ``sensord analyze`` never pays for BLE or MQTT imports.

Any :class:`sensord.errors.SensordError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from sensord import __version__
from sensord.errors import SensordError

#: command name -> (module, one-line help). Add a command here and in sensord/commands/.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("sensord.commands.run", "live run: sensor -> engine -> coaching -> delivery"),
    "analyze": ("sensord.commands.analyze", "per-step metrics of a recording (JSON Lines)"),
    "simulate": ("sensord.commands.simulate", "write a simulated run and its ground truth"),
    "scan": ("sensord.commands.scan", "list nearby supported BLE sensors"),
    "virtual-sensor": ("sensord.commands.virtual_sensor", "a virtual BLE sensor (Bumble)"),
    "ingest": ("sensord.commands.ingest", "the MQTT -> InfluxDB bridge"),
    "pain": ("sensord.commands.pain", "report a 0-10 pain score for a live run"),
    "report": ("sensord.commands.report", "self-contained HTML report of a run"),
    "grafana": ("sensord.commands.grafana", "install dashboards and alert rules into Grafana"),
}


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as e:
        if e.name == COMMANDS[name][0]:
            return None  # command not built yet
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sensord", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sensord {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or only == name:
            mod = _load(name)
            if mod is not None:
                mod.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if a in COMMANDS), None)
    parser = build_parser(only=command)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    mod = _load(args.command)
    if mod is None:
        print(f"sensord: error: command '{args.command}' is not available in this build",
              file=sys.stderr)
        return 2
    try:
        return int(mod.run(args))
    except SensordError as e:
        print(f"sensord: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
