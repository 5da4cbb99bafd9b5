"""Live collection from one BLE sensor through bleak: :class:`BleCollector`.

Pipeline
--------
::

    bleak notification callback (any profile characteristic)
        -> bounded queue (``queue_packets``; overflow drops the OLDEST packet, counted,
           and the loss then shows up downstream as a gap)
        -> profile.decode (DecodeError -> counted as malformed, logged at a limited rate)
        -> sensor times (the sensor's timestamps, or the arrival timer for sensors
           without any) -> reorder window (dedupe, reorder, gaps)
        -> clock mapping (minimum-latency envelope) -> SampleBlock on host time

and, beside it, a supervisor task that owns the link: connect (bleak-retry-connector's
``establish_connection``, which works with any bleak backend class, the Bumble one
included), subscribe, write the profile's start commands, read the battery; on a
disconnect reconnect with capped exponential backoff (with jitter) and continue the
run; when notifications stop without a disconnect (``watchdog_s`` without data),
first restart streaming (stop + start commands, re-subscribe), then, if the sensor
stays silent, drop the link and reconnect.

:meth:`BleCollector.stream` yields :class:`~sensord.model.SampleBlock` (strictly
increasing ``t_s``, seconds since the collector opened, on host time),
:class:`~sensord.sources.base.CadenceSample` (cadence-only sensors) and
:class:`~sensord.model.SensorHealth` every ``health_interval_s`` and at every link
change. The collector never raises on data; only opening it can fail
(:class:`~sensord.errors.ServiceError`: no such device, unsupported device, no radio).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from sensord.errors import DecodeError, ServiceError
from sensord.model import FloatArray, SampleBlock
from sensord.sources.base import CadenceSample, SourceEvent, SourceInfo
from sensord.sources.ble import clock, health, reorder
from sensord.sources.ble.bumble_backend import (
    DEFAULT_TRANSPORT,
    BumbleRadio,
    VirtualAir,
    backend_kwargs,
    resolve_transport,
)
from sensord.sources.ble.profiles import (
    PROFILES,
    Profile,
    decode_battery_level,
    get_profile,
    match_profile,
    normalize_uuid,
    supported_profiles_text,
)

log = logging.getLogger(__name__)

#: Errors a flaky link raises (retried with backoff, never fatal mid-run).
LINK_ERRORS: tuple[type[Exception], ...] = (BleakError, TimeoutError, OSError, EOFError)
RECONNECT_ERRORS: tuple[type[Exception], ...] = (ServiceError, *LINK_ERRORS)


@dataclass(frozen=True, slots=True)
class CollectorParams:
    """How to find, connect to and stream from one sensor.

    Attributes
    ----------
    address
        Bluetooth address to connect to; else ``name``; else the first supported sensor
        that advertises.
    name
        Advertised local name to look for (exact, case-insensitive).
    profile
        Force a profile by name (default: recognised from the advertisement/services).
    rate_hz
        Requested sample rate (the profile picks its closest supported rate).
    gyro
        Ask for the gyroscope where the sensor has one.
    transport
        Transport spec (see :mod:`sensord.sources.ble.bumble_backend`); ``None`` =
        ``$SENSORD_BLE_TRANSPORT`` or the OS backend.
    scan_timeout_s, connect_timeout_s
        How long to look for the device / wait for one connection attempt.
    watchdog_s
        Silence (no notification while streaming) that counts as a stall. Cadence-only
        sensors notify about once a second, so they get ``max(watchdog_s, 3 s)``.
    backoff_initial_s, backoff_max_s
        Reconnect delays: ``initial * 2**attempt`` capped at ``max``, with 50-100 %
        jitter.
    health_interval_s
        How often a ``SensorHealth`` is yielded.
    battery_interval_s
        How often the battery level is read again (also read at every connection).
    queue_packets
        Bound of the notification queue; on overflow the oldest packet is dropped.
    reorder_window_packets, reorder_max_hold_s
        Reorder window (packets) and the longest a packet waits in it (host seconds).
    time_scale
        Sensor seconds per host second; 1 for real sensors, the virtual sensor's
        ``speed`` when it runs faster than real time (tests, benchmarks).
    log_burst, log_interval_s
        Rate limit of per-packet warnings (malformed payloads...).
    """

    address: str | None = None
    name: str | None = None
    profile: str | None = None
    rate_hz: float | None = None
    gyro: bool = True
    transport: str | None = None
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    watchdog_s: float = 1.5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    health_interval_s: float = 2.0
    battery_interval_s: float = 60.0
    queue_packets: int = 4096
    reorder_window_packets: int = 8
    reorder_max_hold_s: float = 0.1
    time_scale: float = 1.0
    log_burst: int = 5
    log_interval_s: float = 10.0


@dataclass(slots=True)
class CollectorStats:
    """Counters beyond :class:`SensorHealth` (for tests, logs and benchmarks)."""

    stalls_detected: int = 0
    stall_detect_delays_s: list[float] = field(default_factory=list)
    streaming_restarts: int = 0
    connect_failures: int = 0
    clock_restarts: int = 0
    suppressed_logs: int = 0
    control_errors: int = 0
    samples_out: int = 0


@dataclass(frozen=True, slots=True)
class _Data:
    uuid: str
    payload: bytes
    arrival_s: float


@dataclass(frozen=True, slots=True)
class _Link:
    up: bool
    reconnect: bool = False
    stall: bool = False


_Item = _Data | _Link


@dataclass(frozen=True, slots=True, eq=False)
class _Decoded:
    t_sensor_s: FloatArray
    acc_mps2: FloatArray
    gyr_dps: FloatArray | None


class BleCollector:
    """A :class:`~sensord.sources.base.Source` for one live BLE sensor.

    Parameters
    ----------
    params
        What to connect to and how.
    radio
        A Bumble central to use (shared by several collectors); default: opened from
        ``params.transport`` (and closed with the collector).
    air
        The :class:`VirtualAir` for the ``"virtual"`` transport.
    device
        A :class:`BLEDevice` already found by a scan (skips scanning).
    """

    def __init__(self, params: CollectorParams | None = None, *,
                 radio: BumbleRadio | None = None, air: VirtualAir | None = None,
                 device: BLEDevice | None = None) -> None:
        self.params = params or CollectorParams()
        self._radio = radio
        self._own_radio = False
        self._air = air
        self._device = device
        self._adv: AdvertisementData | None = None
        self._profile: Profile[Any] | None = None
        self._info: SourceInfo | None = None
        self._client: BleakClient | None = None
        self._queue: asyncio.Queue[_Data] = asyncio.Queue(maxsize=self.params.queue_packets)
        self._links: deque[_Link] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._disconnected = asyncio.Event()
        self._last_data_host: float = 0.0  # arrival of the last notification
        self._watch_from_host: float = 0.0  # session start / last streaming restart
        self._rng = random.Random(0x5E5D)
        self.stats = CollectorStats()
        self._t0_host = 0.0
        self._health = health.HealthState()
        self._health_params = health.HealthParams(interval_s=self.params.health_interval_s)

    # -- Source protocol -------------------------------------------------------------

    @property
    def info(self) -> SourceInfo:
        if self._info is None:
            raise RuntimeError("BleCollector.info is valid after the collector is opened")
        return self._info

    @property
    def opened_host_s(self) -> float:
        """Event-loop time that is run time 0 of :meth:`stream` (``t_s`` origin)."""
        return self._t0_host

    @property
    def profile(self) -> Profile[Any]:
        if self._profile is None:
            raise RuntimeError("BleCollector.profile is valid after the collector is opened")
        return self._profile

    async def __aenter__(self) -> BleCollector:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _host_now(self) -> float:
        return asyncio.get_running_loop().time()

    async def open(self) -> None:
        """Find the sensor, connect, recognise its profile, start streaming.

        Raises
        ------
        ServiceError
            No radio, no such device, a device that is no supported sensor, or a
            sensor that cannot be connected.
        """
        p = self.params
        spec = resolve_transport(p.transport)
        if self._radio is None and spec != DEFAULT_TRANSPORT:
            self._radio = await BumbleRadio.open(spec, self._air)
            self._own_radio = True
        self._t0_host = self._host_now()
        try:
            if self._device is None:
                self._device, self._adv = await self._find()
            client = await self._connect_once()
            self._profile = self._recognise(client)
            await self._start_session(client)
        except BaseException:
            await self._teardown()
            raise
        prof = self._profile
        rate = prof.choose_rate(p.rate_hz) if prof.rates_hz else None
        self._info = SourceInfo(
            sensor_id=self._device.address,
            profile=prof.name,
            placement_hint="foot" if not prof.rates_hz else None,
            has_gyro=prof.has_gyro and p.gyro,
            rate_hz=rate,
            name=self._device.name or "",
            cadence_only=not prof.rates_hz,
        )
        self._health = health.on_connection(self._health, True)
        self._supervisor = asyncio.create_task(self._supervise(), name="ble-supervisor")

    async def close(self) -> None:
        """Stop streaming, disconnect, release the radio; idempotent."""
        self._closing = True
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
            self._supervisor = None
        await self._teardown()

    async def _teardown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                if self._profile is not None and client.is_connected:
                    for uuid, cmd in self._profile.stop_commands():
                        await client.write_gatt_char(uuid, cmd, response=True)
            with contextlib.suppress(Exception):
                await client.disconnect()
        if self._own_radio and self._radio is not None:
            await self._radio.close()
            self._radio = None
            self._own_radio = False

    # -- finding and connecting ------------------------------------------------------

    async def _find(self) -> tuple[BLEDevice, AdvertisementData | None]:
        p = self.params
        found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
        done = asyncio.Event()

        def wanted(d: BLEDevice, a: AdvertisementData) -> bool:
            if p.address is not None:
                return d.address.split("/")[0].upper() == p.address.split("/")[0].upper()
            name = a.local_name or d.name
            if p.name is not None:
                return name is not None and name.strip().lower() == p.name.strip().lower()
            return match_profile(name, a.service_uuids) is not None

        def on_adv(d: BLEDevice, a: AdvertisementData) -> None:
            if wanted(d, a) and d.address not in found:
                found[d.address] = (d, a)
                done.set()

        kwargs = backend_kwargs(self._radio, scanner=True)
        try:
            async with BleakScanner(on_adv, **kwargs):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), p.scan_timeout_s)
        except LINK_ERRORS as e:
            raise ServiceError(f"BLE scan failed ({e}); check the adapter / --transport") from e
        if not found:
            what = (f"address {p.address}" if p.address else
                    f"name {p.name!r}" if p.name else "any supported sensor")
            raise ServiceError(
                f"no BLE device with {what} advertised within {p.scan_timeout_s:g} s; is it "
                f"on and not connected to another phone/app? ({supported_profiles_text()})")
        return next(iter(found.values()))

    async def _connect_once(self) -> BleakClient:
        assert self._device is not None
        kwargs = backend_kwargs(self._radio, scanner=False)
        try:
            client = await establish_connection(
                BleakClient, self._device, self._device.name or self._device.address,
                disconnected_callback=self._on_disconnected, max_attempts=3,
                timeout=self.params.connect_timeout_s, **kwargs)
        except LINK_ERRORS as e:
            raise ServiceError(f"cannot connect to {self._device.address}: {e}") from e
        self._client = client
        self._disconnected.clear()
        return client

    def _recognise(self, client: BleakClient) -> Profile[Any]:
        p = self.params
        if p.profile is not None:
            prof = get_profile(p.profile)
            if prof is None:
                names = ", ".join(x.name for x in PROFILES)
                raise ServiceError(f"unknown profile {p.profile!r}; choose one of {names}")
            return prof
        assert self._device is not None
        service_uuids = [s.uuid for s in client.services]
        advertised = list(self._adv.service_uuids) if self._adv is not None else []
        name = (self._adv.local_name if self._adv is not None else None) or self._device.name
        prof_opt = match_profile(name, advertised) or match_profile(name, service_uuids)
        if prof_opt is None or normalize_uuid(prof_opt.service_uuid) not in service_uuids:
            offered = ", ".join(sorted(service_uuids)) or "none"
            raise ServiceError(
                f"{name or 'device'} ({self._device.address}) is not a supported sensor "
                f"(its GATT services: {offered}); {supported_profiles_text()}")
        return prof_opt

    def _on_disconnected(self, _client: BleakClient) -> None:
        if self._closing:
            return
        self._disconnected.set()
        self._push_link(_Link(up=False))

    def _push_link(self, link: _Link) -> None:
        self._links.append(link)
        self._wake.set()

    def _on_notify(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        item = _Data(char.uuid, bytes(data), self._host_now())
        self._last_data_host = item.arrival_s
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:  # overflow policy: drop the oldest, keep the newest
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._health = health.on_counts(self._health, queue_overflows=1)
            self._queue.put_nowait(item)
        self._wake.set()

    async def _start_session(self, client: BleakClient) -> None:
        prof = self.profile
        p = self.params
        for uuid in prof.notify_uuids:
            await client.start_notify(uuid, self._on_notify)
        for uuid, cmd in prof.start_commands(p.rate_hz, p.gyro):
            await client.write_gatt_char(uuid, cmd, response=True)
        self._watch_from_host = self._host_now()
        await self._read_battery(client)

    async def _read_battery(self, client: BleakClient) -> None:
        prof = self.profile
        battery: int | None = None
        if prof.battery_uuid is not None:
            with contextlib.suppress(Exception):  # a bad reading is no reason to stop
                battery = decode_battery_level(bytes(await client.read_gatt_char(
                    prof.battery_uuid)))
        self._health = health.on_battery(self._health, battery)

    async def _restart_streaming(self, client: BleakClient) -> None:
        prof = self.profile
        self.stats.streaming_restarts += 1
        with contextlib.suppress(*LINK_ERRORS):
            for uuid, cmd in prof.stop_commands():
                await client.write_gatt_char(uuid, cmd, response=True)
        for uuid in prof.notify_uuids:
            with contextlib.suppress(*LINK_ERRORS):
                await client.stop_notify(uuid)
            await client.start_notify(uuid, self._on_notify)
        for uuid, cmd in prof.start_commands(self.params.rate_hz, self.params.gyro):
            await client.write_gatt_char(uuid, cmd, response=True)

    # -- supervisor: watchdog and reconnects -----------------------------------------

    def _watchdog_s(self) -> float:
        w = self.params.watchdog_s
        return max(w, 3.0) if not self.profile.rates_hz else w

    async def _supervise(self) -> None:
        while not self._closing:
            client = self._client
            reason = await self._watch(client)
            if self._closing:
                return
            if reason == "stall" and client is not None:
                with contextlib.suppress(*LINK_ERRORS):
                    await client.disconnect()
                self._push_link(_Link(up=False, stall=True))
            self._client = None
            await self._reconnect()

    async def _watch(self, client: BleakClient | None) -> Literal["down", "stall"]:
        """Return when the link is down, or stalled even after a streaming restart."""
        restarted = False
        tick = 0.1  # detection within watchdog_s + tick (1.6 s by default)
        next_battery = self._host_now() + self.params.battery_interval_s
        while not self._closing:
            if client is None or self._disconnected.is_set() or not client.is_connected:
                return "down"
            now = self._host_now()
            if now >= next_battery:
                next_battery = now + self.params.battery_interval_s
                await self._read_battery(client)
            silent = now - max(self._last_data_host, self._watch_from_host)
            if restarted and self._last_data_host > self._watch_from_host:
                restarted = False  # data flows again after the restart
            if silent >= self._watchdog_s():
                if restarted:
                    log.warning("%s: still silent after a streaming restart; reconnecting",
                                self.info.name or self.info.sensor_id)
                    return "stall"
                self.stats.stalls_detected += 1
                self.stats.stall_detect_delays_s.append(silent)
                log.warning("%s: no data for %.1f s while connected; restarting streaming",
                            self.info.name or self.info.sensor_id, silent)
                self._health = health.on_connection(self._health, True, stall=True)
                self._push_link(_Link(up=True, stall=True))
                restarted = True
                try:
                    await self._restart_streaming(client)
                except LINK_ERRORS as e:
                    log.info("streaming restart failed (%s); reconnecting", e)
                    return "stall"
                self._watch_from_host = self._host_now()
            await asyncio.sleep(tick)
        return "down"

    async def _reconnect(self) -> None:
        attempt = 0
        p = self.params
        while not self._closing:
            try:
                client = await self._connect_once()
                await self._start_session(client)
            except RECONNECT_ERRORS as e:
                self.stats.connect_failures += 1
                if self._client is not None:
                    with contextlib.suppress(Exception):
                        await self._client.disconnect()
                    self._client = None
                delay = min(p.backoff_max_s, p.backoff_initial_s * 2.0 ** attempt)
                delay *= 0.5 + 0.5 * self._rng.random()
                attempt += 1
                log.info("reconnect attempt %d failed (%s); next in %.1f s", attempt, e, delay)
                await asyncio.sleep(delay)
                continue
            self._push_link(_Link(up=True, reconnect=True))
            return

    # -- the stream ------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[SourceEvent]:
        """Sample blocks, cadence readings and health, until :meth:`close`."""
        prof = self.profile
        p = self.params
        rate = prof.choose_rate(p.rate_hz) if prof.rates_hz else 1.0
        period = 1.0 / rate
        rparams = reorder.ReorderParams(period_s=period, window_packets=p.reorder_window_packets,
                                        max_hold_s=p.reorder_max_hold_s * p.time_scale)
        rstate: reorder.ReorderState[_Decoded] = reorder.init_state()
        cparams = clock.ClockParams()
        cstate = clock.init_clock()
        aparams = clock.ArrivalParams(period_s=period, gap_s=0.5 * p.time_scale)
        astate = clock.init_arrival()
        dec_state = prof.initial_state(p.rate_hz, p.gyro)
        limit = health.LogLimitParams(p.log_burst, p.log_interval_s)
        lstate = health.LogLimitState()
        has_gyro = prof.has_gyro and p.gyro
        scale = p.time_scale
        t0 = self._t0_host * scale
        last_out = -np.inf
        check_epoch = False
        resync_arrival = False
        next_health = self._host_now()

        def host_scaled(h: float) -> float:
            return h * scale

        def run_time(h: float) -> float:
            return (h - self._t0_host) * scale

        def emit(pkt: reorder.Packet[_Decoded], mapping: clock.ClockState) -> SampleBlock:
            nonlocal last_out
            d = pkt.payload
            t = clock.to_host(mapping, d.t_sensor_s) - t0
            if t[0] <= last_out:  # a refit moved the line back: keep time increasing
                t = t + (last_out - t[0] + 0.5 * period)
            last_out = float(t[-1])
            gyr = d.gyr_dps
            if has_gyro and gyr is None:
                gyr = np.full_like(d.acc_mps2, np.nan)
            self.stats.samples_out += len(t)
            return SampleBlock(t, d.acc_mps2, gyr if has_gyro else None)

        def released(outs: list[reorder.Output[_Decoded]],
                     mapping: clock.ClockState) -> list[SourceEvent]:
            events: list[SourceEvent] = []
            for o in outs:
                if isinstance(o, reorder.GapReport):
                    self._health = health.on_counts(self._health, gaps=1,
                                                    missing_samples=o.missing)
                else:
                    events.append(emit(o, mapping))
            return events

        def warn(msg: str, *args: object) -> None:
            nonlocal lstate
            lstate, ok, suppressed = health.log_allowed(limit, lstate, self._host_now())
            if suppressed:
                self.stats.suppressed_logs += suppressed
                log.warning("(%d similar messages suppressed)", suppressed)
            if ok:
                log.warning(msg, *args)

        while not self._closing:
            # sleep until data, a link change, the next health report or the moment the
            # oldest packet in the reorder window has been held long enough
            now = self._host_now()
            wait_s = next_health - now
            if rstate.pending:
                due = (rstate.pending[0].arrival_s + rparams.max_hold_s) / scale
                wait_s = min(wait_s, due - now)
            if wait_s > 0 and not self._wake.is_set():
                # a timer that wakes us (cheaper per notification than asyncio.timeout)
                timer = asyncio.get_running_loop().call_later(wait_s, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
            self._wake.clear()
            events: list[SourceEvent] = []
            mapping = cstate if prof.has_timestamps else astate.clock
            # link changes first: flush what is pending before the new connection
            while self._links:
                link = self._links.popleft()
                if not link.up:
                    resync_arrival = True
                    rstate, outs = reorder.flush_all(rparams, rstate)
                    events.extend(released(outs, mapping))
                    self._health = health.on_connection(self._health, False)
                elif link.reconnect:
                    dec_state = prof.initial_state(p.rate_hz, p.gyro)
                    check_epoch = True
                    self._health = health.on_connection(self._health, True, reconnect=True)
                events.append(health.snapshot(self._health, run_time(self._host_now())))
            while True:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                try:
                    dec_state, decoded = prof.decode(item.uuid, item.payload, dec_state)
                except DecodeError as e:
                    self._health = health.on_counts(self._health, malformed=1)
                    warn("%s: malformed notification (%d bytes) dropped: %s",
                         self.info.name or self.info.sensor_id, len(item.payload), e)
                    continue
                arrival = host_scaled(item.arrival_s)
                for ds in decoded:
                    if ds.is_control:
                        if ds.control_ok is False:
                            self.stats.control_errors += 1
                            warn("%s: %s", self.info.name, ds.control_message)
                        continue
                    if ds.cadence_spm is not None:
                        self._health = health.on_packet(self._health_params, self._health, 0,
                                                        None)
                        events.append(CadenceSample(
                            run_time(item.arrival_s), float(ds.cadence_spm),
                            ds.speed_mps, ds.stride_length_m))
                        continue
                    if ds.acc_mps2 is None or len(ds) == 0:
                        continue
                    n = len(ds)
                    if ds.t_s is not None and prof.has_timestamps:
                        t_sensor = np.asarray(ds.t_s, dtype=np.float64)
                        if check_epoch and rstate.last_end_s is not None and \
                                t_sensor[0] <= rstate.last_end_s:
                            # the sensor's clock restarted with the connection
                            self.stats.clock_restarts += 1
                            rstate = reorder.restart(rstate)
                            cstate = clock.init_clock()
                        check_epoch = False
                        cstate = clock.observe(cparams, cstate, float(t_sensor[-1]), arrival)
                        mapping = cstate
                    else:
                        astate, t_sensor, _ = clock.arrival_times(aparams, astate, n, arrival,
                                                                  resync=resync_arrival)
                        resync_arrival = False
                        mapping = astate.clock
                    latency = arrival - clock.to_host_scalar(mapping, float(t_sensor[-1]))
                    self._health = health.on_packet(self._health_params, self._health, n,
                                                    latency / scale)
                    pkt = reorder.Packet(float(t_sensor[0]), float(t_sensor[-1]), n, arrival,
                                         _Decoded(t_sensor, ds.acc_mps2, ds.gyr_dps))
                    before = (rstate.duplicates, rstate.late)
                    rstate, outs = reorder.step(rparams, rstate, pkt)
                    self._health = health.on_counts(
                        self._health, duplicates=rstate.duplicates - before[0],
                        late=rstate.late - before[1])
                    events.extend(released(outs, mapping))
            rstate, outs = reorder.flush_due(rparams, rstate, host_scaled(self._host_now()))
            events.extend(released(outs, mapping))
            now = self._host_now()
            if now >= next_health:
                next_health = now + p.health_interval_s
                events.append(health.snapshot(self._health, run_time(now)))
            for ev in events:
                yield ev

    @property
    def health_state(self) -> health.HealthState:
        """The cumulative link counters (what the last ``SensorHealth`` summarised)."""
        return self._health

