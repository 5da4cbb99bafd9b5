"""A virtual BLE sensor: a Bumble peripheral speaking a real sensor's GATT protocol.

It advertises like the real device (local name, service UUID), implements the profile
at the GATT level (service, data and control-point characteristics with their CCCDs,
the Battery Service 0x180F where the real device has one), answers control-point writes
through the profile's :class:`~sensord.sources.ble.profiles.Encoder`, and streams
samples from a :class:`SensorFeed` (the simulator or a recording) at real time, or
``speed`` times faster, as the exact notification payloads of the real device.

Like a real sensor its clock keeps running while nobody listens: samples due while the
central is disconnected (or before it starts streaming) are never sent.

Fault injection (:class:`Faults`) covers what a body-worn sensor does in the field:
dropping the link mid-run, going silent while staying connected, duplicated and
reordered notifications, malformed and truncated payloads, lost notifications; and
``profile="unsupported"`` makes a device that is not a supported sensor at all.

Runs on a :class:`~sensord.sources.ble.bumble_backend.VirtualAir` shared with the
collector (tests, ``sensord run --sensor virtual``) or, for another process, behind an
HCI transport (``sensord virtual-sensor --hci tcp-server:_:9000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from sensord.errors import InputError
from sensord.model import FloatArray, SampleBlock
from sensord.sources.ble.bumble_backend import VirtualAir
from sensord.sources.ble.collector import BleCollector, CollectorParams
from sensord.sources.ble.profiles import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    PROFILES,
    DecodedSamples,
    Encoder,
    Profile,
    encode_battery_level,
    get_profile,
    normalize_uuid,
)

log = logging.getLogger(__name__)

UNSUPPORTED = "unsupported"
#: What the "unsupported" device offers: a Health Thermometer, nothing we can read.
UNSUPPORTED_SERVICE_UUID = "00001809-0000-1000-8000-00805f9b34fb"
UNSUPPORTED_CHAR_UUID = "00002a1c-0000-1000-8000-00805f9b34fb"

#: Names the real devices advertise (each matches its profile's name patterns).
DEFAULT_NAMES: dict[str, str] = {
    "sensord-imu": "sensord IMU 01",
    "polar-verity": "Polar Sense B5A3F393",
    "polar-h10": "Polar H10 A1B2C3D4",
    "movesense": "Movesense 214530",
    "witmotion": "WT901BLE68",
    "rsc": "Stryd 4F21",
    UNSUPPORTED: "Acme Thermo",
}


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault injection knobs (all off by default).

    Attributes
    ----------
    disconnect_at_s
        Feed times (seconds) at which the sensor drops the connection (it then
        advertises again and accepts a reconnection).
    stall_at_s
        Feed time at which the sensor stops notifying while staying connected.
    stall_for_s
        How long it stays silent; ``inf`` = until the central restarts streaming
        (a control-point start) or reconnects.
    duplicate_every, swap_every, drop_every, malformed_every, truncate_every
        Every N-th data notification is sent twice / swapped with the next one / not
        sent / sent with a corrupted first byte / cut to half its length (0 = never).
    """

    disconnect_at_s: tuple[float, ...] = ()
    stall_at_s: float | None = None
    stall_for_s: float = math.inf
    duplicate_every: int = 0
    swap_every: int = 0
    drop_every: int = 0
    malformed_every: int = 0
    truncate_every: int = 0


@dataclass(frozen=True, slots=True)
class VirtualSensorParams:
    """What the virtual sensor is and how it behaves.

    Attributes
    ----------
    profile
        Profile name (see ``sensord scan``), or ``"unsupported"``.
    name
        Advertised local name (default: what the real device advertises).
    address
        Bluetooth address (default: the next free one on the air).
    speed
        Time factor: 1 = real time, 10 = ten times faster (tests).
    battery_pct
        Battery level served on 0x2A19.
    clock_offset_s
        Sensor clock at the first feed sample, seconds (sensor clocks do not start at 0).
    clock_drift_ppm
        Sensor clock rate error, parts per million.
    tick_s
        Feed time between two streaming rounds, seconds.
    advertising_interval_ms
        Advertising interval.
    loop_feed
        Start the feed over when it ends (else the sensor goes quiet); the sensor clock
        and sequence numbers run on, as on a real sensor.
    faults
        Fault injection.
    """

    profile: str
    name: str | None = None
    address: str | None = None
    speed: float = 1.0
    battery_pct: int = 87
    clock_offset_s: float = 1000.0
    clock_drift_ppm: float = 0.0
    tick_s: float = 0.02
    advertising_interval_ms: float = 50.0
    loop_feed: bool = False
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if self.profile != UNSUPPORTED and get_profile(self.profile) is None:
            names = ", ".join(p.name for p in PROFILES)
            raise InputError(f"unknown sensor profile {self.profile!r}; choose one of {names}")
        if not self.speed > 0:
            raise InputError(f"speed must be > 0, got {self.speed}")


@dataclass(frozen=True, slots=True, eq=False)
class SensorFeed:
    """What the virtual sensor measures: samples on a time axis starting near 0.

    ``step_times_s`` (initial contacts) drive cadence-only profiles (RSC); without
    them cadence is estimated from nothing and reported as 0.
    """

    samples: SampleBlock
    step_times_s: FloatArray | None = None
    speed_mps: float = 3.2

    @property
    def duration_s(self) -> float:
        t = self.samples.t_s
        return float(t[-1] - t[0]) if t.size else 0.0


@dataclass(slots=True)
class VirtualSensorStats:
    """What the sensor did (for tests): counts of notifications and injected faults."""

    connections: int = 0
    data_notifications: int = 0
    samples_sent: int = 0
    duplicated: int = 0
    swapped: int = 0
    dropped: int = 0
    malformed: int = 0
    truncated: int = 0
    disconnects: int = 0
    stalls: int = 0
    stall_started_host_s: float | None = None
    last_data_host_s: float | None = None
    sent_first_t_s: list[float] = field(default_factory=list)


def _ad_uuid_type(u: UUID) -> int:
    n = len(u.to_bytes())
    if n == 2:
        return int(AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS)
    if n == 4:
        return int(AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS)
    return int(AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)


def _short_uuid(u: str) -> UUID:
    """A Bumble UUID, 16-bit where the 128-bit form is on the SIG base."""
    u = normalize_uuid(u)
    if u.endswith("-0000-1000-8000-00805f9b34fb") and u.startswith("0000"):
        return UUID(u[4:8])
    return UUID(u)


def advertising_payload(name: str, service: UUID) -> bytes:
    """Legacy advertising data (31 bytes at most): service UUID, flags, name.

    The service UUID always fits; the flags go when the name needs their room; a name
    that still does not fit is sent shortened (AD type 0x08), as real devices do.
    """
    uuid_ad = (_ad_uuid_type(service), service.to_bytes())
    flags_ad = (int(AdvertisingData.Type.FLAGS), bytes([0x06]))
    raw_name = name.encode()
    room = 31 - (2 + len(service.to_bytes())) - 2
    structures = [uuid_ad]
    if len(raw_name) <= room - 3:
        structures.insert(0, flags_ad)
    if len(raw_name) <= room:
        structures.append((int(AdvertisingData.Type.COMPLETE_LOCAL_NAME), raw_name))
    else:
        structures.append((int(AdvertisingData.Type.SHORTENED_LOCAL_NAME), raw_name[:room]))
    return bytes(AdvertisingData(structures))


class VirtualSensor:
    """One virtual sensor on a :class:`VirtualAir` (or a bare Bumble device).

    Use ``async with VirtualSensor(air, params, feed) as sensor:`` (or :meth:`start` /
    :meth:`stop`). :attr:`address` is where a central finds it.
    """

    def __init__(self, air: VirtualAir | None, params: VirtualSensorParams,
                 feed: SensorFeed, device: Device | None = None) -> None:
        self.params = params
        self.feed = feed
        name = params.name or DEFAULT_NAMES[params.profile]
        if device is None:
            if air is None:
                raise ValueError("VirtualSensor needs a VirtualAir or a Bumble device")
            device = air.new_device(name, params.address)
        self.device = device
        self.name = name
        self.profile: Profile[Any] | None = get_profile(params.profile)
        self.stats = VirtualSensorStats()
        #: Battery level served on 0x2A19 (change it to simulate a draining battery).
        self.battery_pct = params.battery_pct
        self._encoder: Encoder | None = None
        self._chars: dict[str, Characteristic[Any]] = {}
        self._battery: Characteristic[Any] | None = None
        self._connection: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stalled_until_host: float | None = None
        self._held: tuple[Characteristic[Any], bytes] | None = None
        self._notify_count = 0
        self._t0_host = 0.0
        self._subscribed: set[int] = set()
        self._stop_requested = False
        self._build_gatt()

    # -- setup ---------------------------------------------------------------------

    @property
    def started_host_s(self) -> float:
        """Event-loop time at which the sensor clock (feed time 0) started."""
        return self._t0_host

    @property
    def address(self) -> str:
        """The address a central connects to."""
        return str(self.device.random_address)

    def _build_gatt(self) -> None:
        dev = self.device
        services: list[Service] = []
        if self.profile is None:
            chars = [Characteristic(UNSUPPORTED_CHAR_UUID, Characteristic.Properties.INDICATE,
                                    Characteristic.READABLE, b"\x00\x00\x00\x00\x00")]
            services.append(Service(UNSUPPORTED_SERVICE_UUID, chars))
            adv_uuid = _short_uuid(UNSUPPORTED_SERVICE_UUID)
        else:
            p = self.profile
            uuids = list(dict.fromkeys([*p.notify_uuids,
                                        *([p.control_uuid] if p.control_uuid else [])]))
            chars = []
            for u in uuids:
                props = Characteristic.Properties(0)
                if u in p.notify_uuids:
                    props |= Characteristic.Properties.NOTIFY
                if u == p.control_uuid:
                    props |= (Characteristic.Properties.WRITE
                              | Characteristic.Properties.WRITE_WITHOUT_RESPONSE)
                value: CharacteristicValue[bytes] = CharacteristicValue(
                    read=lambda _c: b"", write=self._writer(u))
                ch: Characteristic[bytes] = Characteristic(_short_uuid(u), props,
                                    Characteristic.READABLE | Characteristic.WRITEABLE, value)
                self._chars[u] = ch
                chars.append(ch)
            services.append(Service(_short_uuid(p.service_uuid), chars))
            adv_uuid = _short_uuid(p.service_uuid)
            if p.battery_uuid is not None:
                self._battery = Characteristic(
                    _short_uuid(BATTERY_LEVEL_UUID),
                    Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
                    Characteristic.READABLE,
                    CharacteristicValue(read=lambda _c: encode_battery_level(
                        self.battery_pct)))
                services.append(Service(_short_uuid(BATTERY_SERVICE_UUID), [self._battery]))
        dev.add_services(services)
        dev.advertising_data = advertising_payload(self.name, adv_uuid)
        dev.scan_response_data = bytes(AdvertisingData([
            (int(AdvertisingData.Type.COMPLETE_LOCAL_NAME), self.name.encode()),
        ]))
        dev.on(dev.EVENT_CONNECTION, self._on_connection)
        dev.on("characteristic_subscription", self._on_subscription)

    def _writer(self, uuid: str) -> Callable[[Connection, bytes], None]:
        def write(_connection: Connection, value: bytes) -> None:
            self._on_write(uuid, bytes(value))
        return write

    async def start(self) -> None:
        """Power on, advertise, and start the sensor clock (streaming task)."""
        await self.device.power_on()
        await self._advertise()
        loop = asyncio.get_running_loop()
        self._t0_host = loop.time()
        self._stop_requested = False
        self._task = asyncio.create_task(self._run(), name=f"virtual-sensor {self.name}")

    async def _advertise(self) -> None:
        iv = self.params.advertising_interval_ms
        await self.device.start_advertising(
            auto_restart=True, advertising_interval_min=iv, advertising_interval_max=iv)

    async def stop_streaming(self) -> None:
        """Stop the sensor clock (no more data) after the current round; the link stays."""
        if self._task is not None:
            self._stop_requested = True
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), timeout=2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def stop(self) -> None:
        """Stop streaming, drop any connection, power off."""
        await self.stop_streaming()
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.disconnect()
        with contextlib.suppress(Exception):
            await self.device.power_off()

    async def __aenter__(self) -> VirtualSensor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- GATT events ---------------------------------------------------------------

    def _new_encoder(self) -> None:
        self._encoder = None if self.profile is None else self.profile.encoder()

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self.stats.connections += 1
        self._new_encoder()
        self._stalled_until_host = None
        self._held = None
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_subscription(self, _connection: Connection, characteristic: Characteristic[Any],
                         notify: bool, indicate: bool) -> None:
        handle = int(characteristic.handle)
        if notify or indicate:
            self._subscribed.add(handle)
        else:
            self._subscribed.discard(handle)

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._subscribed.clear()
        self._new_encoder()  # a real device forgets its streaming setup
        self._held = None

    def _on_write(self, uuid: str, value: bytes) -> None:
        enc = self._encoder
        if enc is None:
            return
        responses = enc.handle_write(uuid, value)
        if math.isinf(self.params.faults.stall_for_s):
            self._stalled_until_host = None  # a (re)start command revives a stalled sensor
        if responses:
            asyncio.get_running_loop().create_task(self._send_responses(responses))

    async def _send_responses(self, responses: list[tuple[str, bytes]]) -> None:
        for uuid, payload in responses:
            ch = self._chars.get(normalize_uuid(uuid))
            if ch is not None:
                with contextlib.suppress(Exception):
                    await self.device.notify_subscribers(ch, payload)

    # -- streaming -----------------------------------------------------------------

    def feed_time(self, host_s: float) -> float:
        """Feed time (s) reached at loop time ``host_s``."""
        return (host_s - self._t0_host) * self.params.speed

    def _sensor_time(self, played_s: FloatArray) -> FloatArray:
        p = self.params
        return np.asarray(p.clock_offset_s + played_s * (1.0 + p.clock_drift_ppm * 1e-6),
                          dtype=np.float64)

    def _feed_offset(self, played_s: FloatArray) -> FloatArray:
        """Offset into the feed of a time since streaming started (it wraps when looping)."""
        d = self.feed.duration_s
        return np.mod(played_s, d) if self.params.loop_feed and d > 0 else played_s

    def _samples_between(self, t_from: float, t_to: float, rate_hz: float,
                         gyro: bool) -> DecodedSamples | None:
        """Feed samples in ``(t_from, t_to]`` on the sensor's own grid.

        The sensor samples at ``rate_hz`` by *its* clock: a clock ``clock_drift_ppm``
        fast samples that much more often in true (feed) time, and its timestamps are
        spaced exactly ``1 / rate_hz``.
        """
        rate_true = rate_hz * (1.0 + self.params.clock_drift_ppm * 1e-6)
        k0 = math.floor(t_from * rate_true) + 1
        k1 = math.floor(t_to * rate_true)
        if k1 < k0:
            return None
        s = self.feed.samples
        played = np.arange(k0, k1 + 1, dtype=np.float64) / rate_true
        if not self.params.loop_feed:
            played = played[played <= self.feed.duration_s]
        if played.size == 0:
            return None
        t_feed = s.t_s[0] + self._feed_offset(played)
        acc = np.column_stack([np.interp(t_feed, s.t_s, s.acc_mps2[:, i]) for i in range(3)])
        gyr = None
        if gyro:
            if s.gyr_dps is not None:
                gyr = np.column_stack([np.interp(t_feed, s.t_s, s.gyr_dps[:, i])
                                       for i in range(3)])
            else:
                gyr = np.zeros_like(acc)
        return DecodedSamples(t_s=self._sensor_time(played), acc_mps2=acc, gyr_dps=gyr)

    def _cadence_at(self, t: float) -> float:
        steps = self.feed.step_times_s
        if steps is None:
            return 0.0
        rel = steps - float(self.feed.samples.t_s[0])
        t = float(self._feed_offset(np.array(t))) if t > 6.0 else t
        recent = rel[(rel <= t) & (rel > t - 6.0)]
        if recent.size < 2:
            return 0.0
        return float(60.0 * (recent.size - 1) / (recent[-1] - recent[0]))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        p = self.params
        period_host = p.tick_s / p.speed
        last_t = 0.0
        next_rsc = 1.0
        disconnects = sorted(p.faults.disconnect_at_s)
        stall_done = False
        while not self._stop_requested:
            await asyncio.sleep(period_host)
            now_host = loop.time()
            t = self.feed_time(now_host)  # keeps running when the feed loops
            if t > self.feed.duration_s and not p.loop_feed:
                continue
            # faults: disconnect, stall
            while disconnects and t >= disconnects[0]:
                disconnects.pop(0)
                if self._connection is not None:
                    self.stats.disconnects += 1
                    with contextlib.suppress(Exception):
                        await self._connection.disconnect()
            if (p.faults.stall_at_s is not None and not stall_done
                    and t >= p.faults.stall_at_s and self._connection is not None):
                stall_done = True
                self.stats.stalls += 1
                self.stats.stall_started_host_s = now_host
                self._stalled_until_host = now_host + p.faults.stall_for_s / p.speed
            if self._stalled_until_host is not None and now_host >= self._stalled_until_host:
                self._stalled_until_host = None
            t_from, last_t = last_t, t
            enc = self._encoder
            if (enc is None or self._connection is None
                    or self._stalled_until_host is not None):
                continue
            if self.profile is not None and not self.profile.rates_hz:
                # cadence-only: one measurement a second, whenever subscribed
                if t >= next_rsc:
                    next_rsc = math.floor(t) + 1.0
                    ds = DecodedSamples(cadence_spm=self._cadence_at(t),
                                        speed_mps=self.feed.speed_mps, running=True)
                    await self._send(enc.encode(ds), now_host, 0, None)
                continue
            if not enc.streaming:
                continue
            gyro = self.profile is not None and self.profile.has_gyro
            ds_opt = self._samples_between(t_from, t, enc.rate_hz, gyro)
            if ds_opt is None:
                continue
            assert ds_opt.t_s is not None
            await self._send(enc.encode(ds_opt), now_host, len(ds_opt),
                             float(ds_opt.t_s[0]))

    async def _send(self, notifications: list[tuple[str, bytes]], now_host: float,
                    n_samples: int, t_first: float | None) -> None:
        f = self.params.faults
        notifications = [(u, b) for u, b in notifications
                         if (ch := self._chars.get(normalize_uuid(u))) is not None
                         and int(ch.handle) in self._subscribed]
        if notifications:
            self.stats.samples_sent += n_samples
            if t_first is not None:
                self.stats.sent_first_t_s.append(t_first)
            self.stats.last_data_host_s = now_host
        for uuid, payload in notifications:
            ch = self._chars.get(normalize_uuid(uuid))
            if ch is None:
                continue
            self._notify_count += 1
            i = self._notify_count

            def hit(every: int, i: int = i) -> bool:
                return every > 0 and i % every == 0

            if hit(f.drop_every):
                self.stats.dropped += 1
                continue
            if hit(f.malformed_every):
                self.stats.malformed += 1
                payload = bytes([0xEE]) + payload[1:]
            elif hit(f.truncate_every):
                self.stats.truncated += 1
                payload = payload[: max(1, len(payload) // 2)]
            if hit(f.swap_every) and self._held is None:
                self.stats.swapped += 1
                self._held = (ch, payload)
                continue
            await self._notify(ch, payload)
            if hit(f.duplicate_every):
                self.stats.duplicated += 1
                await self._notify(ch, payload)
            if self._held is not None:
                held, self._held = self._held, None
                await self._notify(*held)
            self.stats.data_notifications += 1
        if self._held is not None:  # swaps stay within one batch: nothing is left behind
            held, self._held = self._held, None
            await self._notify(*held)

    async def _notify(self, ch: Characteristic[Any], payload: bytes) -> None:
        if self._connection is None:
            return
        try:
            await self.device.notify_subscribers(ch, payload)
        except Exception as e:  # the link dropped between the check and the send
            log.debug("%s: notify failed: %s", self.name, e)


def feed_from_simulation(duration_s: float, rate_hz: float, seed: int = 1,
                         **sim_kwargs: Any) -> SensorFeed:
    """A :class:`SensorFeed` from :func:`sensord.sources.simulator.simulate`."""
    from sensord.sources.simulator import SimParams, simulate

    res = simulate(SimParams(duration_s=duration_s, rate_hz=rate_hz, **sim_kwargs), seed)
    steps = np.array([s.t_ic for s in res.truth], dtype=np.float64)
    return SensorFeed(res.samples, steps, float(sim_kwargs.get("speed_mps", 3.2)))


@contextlib.asynccontextmanager
async def virtual_collector(profile: str, feed: SensorFeed, *, speed: float = 1.0,
                            faults: Faults | None = None,
                            params: CollectorParams | None = None
                            ) -> AsyncIterator[BleCollector]:
    """A virtual sensor and an opened :class:`BleCollector` on it, in this process.

    For ``sensord run --sensor virtual``: ``async with virtual_collector("polar-h10",
    feed) as source: async for event in source.stream(): ...``. ``params`` is a
    :class:`~sensord.sources.ble.collector.CollectorParams` (its transport and
    time scale are set here).
    """
    air = VirtualAir()
    vparams = VirtualSensorParams(profile=profile, speed=speed, loop_feed=True,
                                  faults=faults or Faults())
    cparams = replace(params or CollectorParams(), transport="virtual", time_scale=speed)
    async with VirtualSensor(air, vparams, feed) as sensor:
        cparams = replace(cparams, address=sensor.address)
        async with BleCollector(cparams, air=air) as collector:
            yield collector
