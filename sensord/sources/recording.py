"""The sensord recording format: read, validate and write IMU recordings.

The format is a public contract (documented in the README):

- CSV, comma separated, one header row naming the columns.
- Required columns ``t`` (seconds, float), ``ax, ay, az`` (m/s², specific force as an
  accelerometer reports it, gravity included). Optional ``gx, gy, gz`` (deg/s), all
  three or none. Any other column is ignored.
- Lines starting with ``#`` are comments; ``# key=value`` comments are metadata
  (for example ``# placement=pelvis``).
- Sample rate 50 to 1000 Hz; timestamps may jitter, and samples may be missing. A jump
  in ``t`` or a row with NaN sensor values is a gap.

Reading takes a fast vectorised path; only when it fails does a slow line-by-line scan
run, to name the exact file, line and column of the problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from sensord.errors import InputError
from sensord.model import GRAVITY_MPS2, FloatArray, SampleBlock

REQUIRED_COLUMNS = ("t", "ax", "ay", "az")
GYRO_COLUMNS = ("gx", "gy", "gz")
MIN_RATE_HZ = 50.0
MAX_RATE_HZ = 1000.0
#: Beyond these a value is not a body-worn IMU reading but a unit or parsing error.
MAX_ABS_ACC_MPS2 = 2000.0  # ~200 g
MAX_ABS_GYR_DPS = 10000.0
#: A shoe sensor's median |acc| grows with speed (swing); ~5 g at 5.5 m/s.
MAX_MEDIAN_ACC_G = 8.0

_META_RE = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """A recording read from disk: its samples and its ``# key=value`` metadata."""

    samples: SampleBlock
    metadata: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def duration_s(self) -> float:
        t = self.samples.t_s
        return float(t[-1] - t[0]) if t.size else 0.0

    @property
    def rate_hz(self) -> float:
        return nominal_rate_hz(self.samples.t_s)


def nominal_rate_hz(t_s: FloatArray) -> float:
    """Median sample rate of a time axis (robust to jitter and gaps)."""
    if t_s.size < 2:
        return float("nan")
    return float(1.0 / np.median(np.diff(t_s)))


def _fail(path: str, line: int | None, column: str | None, what: str, fix: str) -> InputError:
    where = path
    if line is not None:
        where += f":{line}"
    if column is not None:
        where += f" column '{column}'"
    return InputError(f"{where}: {what}; {fix}")


def read_recording(path: str | Path) -> Recording:
    """Read and validate a recording.

    Raises
    ------
    InputError
        With the file, line and column of the first problem and how to fix it.
    """
    p = str(path)
    head, metadata, header_idx = _read_head(p)
    if header_idx is None:
        raise _fail(p, None, None, "empty file (no header row)",
                    "write a header row 't,ax,ay,az[,gx,gy,gz]' followed by samples")

    names = [c.strip() for c in head[header_idx].split(",")]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise _fail(p, header_idx + 1, None,
                    f"missing column(s) {', '.join(missing)} in header {head[header_idx]!r}",
                    "the header must name t, ax, ay, az (and optionally gx, gy, gz)")
    gyro_present = [c for c in GYRO_COLUMNS if c in names]
    if gyro_present and len(gyro_present) != 3:
        absent = [c for c in GYRO_COLUMNS if c not in names]
        raise _fail(p, header_idx + 1, None,
                    f"gyroscope columns incomplete (no {', '.join(absent)})",
                    "give all of gx, gy, gz or none of them")
    wanted = list(REQUIRED_COLUMNS) + (list(GYRO_COLUMNS) if gyro_present else [])
    for c in wanted:
        if names.count(c) > 1:
            raise _fail(p, header_idx + 1, c, "column named twice", "rename or drop one of them")
    usecols = [names.index(c) for c in wanted]

    data = _parse_fast(p, header_idx, usecols, len(names))
    if data is None:
        data = _parse_slow(p, _all_lines(p), header_idx, usecols, wanted, len(names))
    if data.shape[0] == 0:
        raise _fail(p, header_idx + 2, None, "no samples after the header",
                    "the recording is empty; record again")

    _validate(p, header_idx, data, wanted)
    t = np.ascontiguousarray(data[:, 0])
    acc = np.ascontiguousarray(data[:, 1:4])
    gyr = np.ascontiguousarray(data[:, 4:7]) if gyro_present else None
    return Recording(SampleBlock(t, acc, gyr), metadata, p)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``# key=value`` comment lines before a recording's header (e.g. ``placement``),
    without reading its samples."""
    return _read_head(str(path))[1]


def _read_head(path: str) -> tuple[list[str], dict[str, str], int | None]:
    """The lines up to the header row, the metadata among them, and the header's index
    (``None``: no header). The body is left to the parser."""
    head: list[str] = []
    with _opened(path) as fh:
        for line in fh:
            head.append(line.rstrip("\r\n"))
            if line.strip() and not line.lstrip().startswith("#"):
                break
    metadata: dict[str, str] = {}
    for i, line in enumerate(head):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = _META_RE.match(s)
            if m:
                metadata[m.group(1)] = m.group(2)
            continue
        return head, metadata, i
    return head, metadata, None


@contextmanager
def _opened(path: str) -> Iterator[TextIO]:
    """The file opened as UTF-8 text (a leading byte order mark skipped); unreadable
    files become one-line InputErrors."""
    try:
        with open(path, encoding="utf-8-sig", errors="strict") as fh:
            yield fh
    except FileNotFoundError:
        raise _fail(path, None, None, "no such file", "check the path") from None
    except IsADirectoryError:
        raise _fail(path, None, None, "is a directory", "pass a CSV file") from None
    except UnicodeDecodeError:
        raise _fail(path, None, None, "not a text file", "pass a CSV recording") from None
    except OSError as e:
        raise _fail(path, None, None, f"cannot read ({e.strerror})",
                    "check permissions") from None


def _all_lines(path: str) -> list[str]:
    with _opened(path) as fh:
        return fh.read().splitlines()


def _parse_fast(path: str, header_idx: int, usecols: list[int], ncols: int) -> FloatArray | None:
    """Vectorised parse (pandas' C parser); ``None`` when anything is off.

    Empty cells, and cells missing at the end of a truncated row, read as NaN (a gap).
    Anything else that is not a number sends the file to the slow path, which names the
    line and column.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, comment="#", header=0, usecols=usecols, dtype=np.float64,
                            engine="c", skip_blank_lines=True, encoding="utf-8-sig")
    except (ValueError, IndexError, pd.errors.ParserError):
        return None
    cols = [frame.columns[i] for i in np.argsort(np.argsort(usecols))]
    return np.ascontiguousarray(frame[cols].to_numpy(dtype=np.float64))


def _parse_slow(path: str, lines: list[str], header_idx: int, usecols: list[int],
                wanted: list[str], ncols: int) -> FloatArray:
    rows: list[list[float]] = []
    for i in range(header_idx + 1, len(lines)):
        s = lines[i].strip()
        if not s or s.startswith("#"):
            continue
        cells = s.split(",")
        row: list[float] = []
        for col, name in zip(usecols, wanted, strict=True):
            cell = cells[col].strip() if col < len(cells) else ""
            if cell == "":
                row.append(math.nan)
                continue
            try:
                row.append(float(cell))
            except ValueError:
                raise _fail(path, i + 1, name, f"not a number: {cell[:40]!r}",
                            "write a decimal number (or leave it empty / 'nan' for a gap)"
                            ) from None
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(-1, len(wanted))


def _data_line_numbers(lines: list[str], header_idx: int) -> list[int]:
    """1-based line numbers of the data rows (only computed when reporting an error)."""
    return [i + 1 for i in range(header_idx + 1, len(lines))
            if lines[i].strip() and not lines[i].lstrip().startswith("#")]


def _validate(path: str, header_idx: int, data: FloatArray, wanted: list[str]) -> None:
    def line_of(row: int) -> int:  # only when reporting: reads the file again
        return _data_line_numbers(_all_lines(path), header_idx)[row]

    t = data[:, 0]
    bad_t = np.flatnonzero(~np.isfinite(t))
    if bad_t.size:
        r = int(bad_t[0])
        raise _fail(path, line_of(r), "t", "time is missing or not finite",
                    "every row needs a finite time in seconds")
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        r = int(back[0]) + 1
        raise _fail(path, line_of(r), "t",
                    f"time does not increase (t={t[r]:.6f} after {t[r - 1]:.6f})",
                    "sort the rows by time and remove duplicated samples")
    sensor = data[:, 1:]
    finite_rows = np.all(np.isfinite(sensor), axis=1)
    if not finite_rows.any():
        raise _fail(path, None, None, "no sample has finite sensor values",
                    "the sensor columns are all NaN or empty; record again")
    limits = np.array([MAX_ABS_ACC_MPS2] * 3 + [MAX_ABS_GYR_DPS] * (len(wanted) - 4))
    with np.errstate(invalid="ignore"):
        over = np.abs(sensor) > limits
    if over.any():
        r, c = (int(x[0]) for x in np.nonzero(over))
        unit = "m/s²" if c < 3 else "deg/s"
        raise _fail(path, line_of(r), wanted[c + 1],
                    f"absurd magnitude {sensor[r, c]:g} {unit} (limit {limits[c]:g})",
                    "check the units: acceleration in m/s², angular rate in deg/s")
    norm = np.linalg.norm(sensor[finite_rows, :3], axis=1)
    med = float(np.median(norm))
    if not 0.5 * GRAVITY_MPS2 <= med <= MAX_MEDIAN_ACC_G * GRAVITY_MPS2:
        hint = ""
        if 0.5 <= med <= 3.0:
            hint = " (looks like g: multiply by 9.80665)"
        elif 500 <= med <= 3000:
            hint = " (looks like milli-g: multiply by 0.00980665)"
        raise _fail(path, None, "ax", f"median acceleration magnitude {med:.3g} is not ~9.81{hint}",
                    "acceleration must be in m/s² with gravity included")
    if t.size >= 2:
        rate = nominal_rate_hz(t)
        if not MIN_RATE_HZ * 0.9 <= rate <= MAX_RATE_HZ * 1.1:
            raise _fail(path, None, "t", f"sample rate {rate:.4g} Hz is outside 50-1000 Hz",
                        "check that t is in seconds (not ms) and the rate is supported")


def write_recording(path: str | Path, samples: SampleBlock,
                    metadata: dict[str, str] | None = None) -> None:
    """Write a recording in the sensord format (NaN rows are written as ``nan``)."""
    cols = ["t", "ax", "ay", "az"] + (["gx", "gy", "gz"] if samples.has_gyro else [])
    parts = [samples.t_s[:, None], samples.acc_mps2]
    if samples.gyr_dps is not None:
        parts.append(samples.gyr_dps)
    data = np.hstack(parts)
    header = "# sensord recording v1\n"
    for k, v in (metadata or {}).items():
        header += f"# {k}={v}\n"
    header += ",".join(cols)
    fmt = ["%.6f"] + ["%.5f"] * (len(cols) - 1)
    np.savetxt(path, data, delimiter=",", header=header, comments="", fmt=fmt)


def iter_blocks(samples: SampleBlock, block_size: int) -> Iterator[SampleBlock]:
    """Cut a block into consecutive blocks of ``block_size`` samples (views)."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    for start in range(0, len(samples), block_size):
        yield samples.slice(start, start + block_size)
