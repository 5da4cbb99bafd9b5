#!/usr/bin/env python3
"""Regenerate dashboards/*.json and the Grafana alerting provisioning files.

Usage: ``python dashboards/build.py [--check]`` from the repository root.
The dashboards and rules are defined in :mod:`sensord.dashboards`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sensord.dashboards.build import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main([str(ROOT), *sys.argv[1:]]))
