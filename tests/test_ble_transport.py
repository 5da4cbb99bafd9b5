"""Transport paths and the other sources.

- A ``sensord virtual-sensor`` in another process, reached over a Bumble HCI transport
  (``tcp-client:``): the same code path a USB dongle (``usb:0``) takes, a Bumble host
  stack driving an HCI controller, with no BlueZ or D-Bus.
- ``sensord scan`` on the in-process virtual transport.
- ReplaySource / SimSource implement the Source protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sensord.cli import main
from sensord.errors import InputError, ServiceError
from sensord.model import SampleBlock, SensorHealth
from sensord.sources.base import Source
from sensord.sources.ble.bumble_backend import BumbleRadio, resolve_transport
from sensord.sources.ble.collector import BleCollector, CollectorParams
from sensord.sources.recording import write_recording
from sensord.sources.replay import ReplayParams, ReplaySource
from sensord.sources.sim_source import SimSource, SimSourceParams
from sensord.sources.simulator import SimParams, simulate

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def hci_port() -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensord.cli", "virtual-sensor", "--profile", "sensord-imu",
         "--hci", f"tcp-server:127.0.0.1:{port}", "--duration-s", "30", "--battery-pct", "42"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "virtual sensord-imu sensor" in banner, banner
        yield port
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()


async def test_collector_over_an_hci_transport_to_another_process(hci_port: int) -> None:
    params = CollectorParams(transport=f"tcp-client:127.0.0.1:{hci_port}", scan_timeout_s=5.0,
                             health_interval_s=0.2)
    blocks: list[SampleBlock] = []
    healths: list[SensorHealth] = []
    async with BleCollector(params) as col:
        assert col.info.profile == "sensord-imu"
        async for ev in col.stream():
            if isinstance(ev, SampleBlock):
                blocks.append(ev)
            elif isinstance(ev, SensorHealth):
                healths.append(ev)
            if sum(len(b) for b in blocks) >= 150:
                break
    s = SampleBlock.concat(blocks)
    assert len(s) >= 150
    assert np.all(np.diff(s.t_s) > 0)
    # real accelerometer data, gravity included, in m/s²
    assert 5.0 < float(np.median(np.linalg.norm(s.acc_mps2, axis=1))) < 20.0
    assert healths[-1].battery_pct == 42


def test_scan_command_over_hci_transport(hci_port: int,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["scan", "--transport", f"tcp-client:127.0.0.1:{hci_port}", "--timeout-s", "0.6",
               "--json"])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["profile"] for r in rows] == ["sensord-imu"]
    assert rows[0]["rssi_dbm"] < 0


def test_scan_command_virtual_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["scan", "--transport", "virtual", "--timeout-s", "0.4", "--all"])
    assert rc == 0
    out = capsys.readouterr().out
    for name in ("sensord-imu", "polar-h10", "polar-verity", "movesense", "witmotion", "rsc",
                 "(not supported)"):
        assert name in out


def test_bad_transport_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["scan", "--transport", "tcp-client:127.0.0.1:1", "--timeout-s", "0.2"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cannot open BLE transport" in err
    assert "usb:0" in err


async def test_virtual_transport_needs_an_air() -> None:
    with pytest.raises(ServiceError, match="VirtualAir"):
        await BumbleRadio.open("virtual")


def test_transport_resolution_prefers_flag_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSORD_BLE_TRANSPORT", "usb:0")
    assert resolve_transport(None) == "usb:0"
    assert resolve_transport("virtual") == "virtual"
    monkeypatch.delenv("SENSORD_BLE_TRANSPORT")
    assert resolve_transport(None) == "system"


async def test_replay_source_streams_a_recording_in_order(tmp_path: Path) -> None:
    res = simulate(SimParams(duration_s=6.0, rate_hz=100.0), seed=2)
    path = tmp_path / "run.csv"
    write_recording(path, res.samples, {"placement": "pelvis"})
    src = ReplaySource(ReplayParams(str(path), speed=0.0, block_s=0.5))
    blocks: list[SampleBlock] = []
    async with src:
        assert isinstance(src, Source)  # (info is only valid once opened)
        assert src.info.placement_hint == "pelvis"
        assert src.info.has_gyro
        async for ev in src.stream():
            if isinstance(ev, SampleBlock):
                blocks.append(ev)
    s = SampleBlock.concat(blocks)
    assert len(s) == len(res.samples)
    assert s.t_s[0] == 0.0
    np.testing.assert_allclose(s.acc_mps2, res.samples.acc_mps2, atol=1e-4)


async def test_replay_source_bad_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        async with ReplaySource(ReplayParams(str(tmp_path / "missing.csv"))):
            pass


async def test_sim_source_matches_the_simulator_and_keeps_truth() -> None:
    sim = SimParams(duration_s=5.0, rate_hz=100.0)
    src = SimSource(SimSourceParams(sim=sim, seed=4, speed=0.0, block_s=0.25))
    assert isinstance(src, Source)
    blocks: list[SampleBlock] = []
    async with src:
        async for ev in src.stream():
            if isinstance(ev, SampleBlock):
                blocks.append(ev)
    ref = simulate(sim, 4)
    s = SampleBlock.concat(blocks)
    np.testing.assert_array_equal(s.t_s, ref.samples.t_s)
    assert [t.t_ic for t in src.truth] == [t.t_ic for t in ref.truth]


async def test_sim_source_paces_at_speed() -> None:
    """Paced: 1 s of samples at 20x arrives no sooner than ~50 ms (event-loop clock)."""
    sim = SimParams(duration_s=1.0, rate_hz=100.0)
    src = SimSource(SimSourceParams(sim=sim, speed=20.0, block_s=0.1))
    loop = asyncio.get_running_loop()
    async with src:
        t0 = loop.time()
        async for _ in src.stream():
            pass
        elapsed = loop.time() - t0
    assert elapsed >= 0.9 / 20.0
