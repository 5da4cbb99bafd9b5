"""A bleak backend on Bumble's central: the one seam between sensord and BLE hardware.

bleak 3.x selects an OS backend (BlueZ over D-Bus on Linux); it ships none for Bumble.
This module implements :class:`bleak.backends.scanner.BaseBleakScanner` and
:class:`bleak.backends.client.BaseBleakClient` over a Bumble :class:`~bumble.device.Device`
acting as a GATT central, and hands them to bleak through its ``backend=`` argument. The
collector and scanner code above only ever talk to :class:`bleak.BleakClient` /
:class:`bleak.BleakScanner`; what radio sits below is chosen by a *transport spec*:

``"virtual"``
    An in-process Bumble controller on a :class:`VirtualAir` (a
    :class:`bumble.link.LocalLink`), shared with :class:`~sensord.sources.ble.virtual_sensor.
    VirtualSensor` peripherals in the same process. Used by the tests and by
    ``sensord run --sensor virtual``.
any Bumble transport spec (``usb:0``, ``hci-socket:0``, ``tcp-client:127.0.0.1:9000``...)
    A real HCI controller driven by Bumble's own host stack, no BlueZ or D-Bus needed
    (for a USB dongle in a container). ``tcp-client:HOST:PORT`` also reaches a
    ``sensord virtual-sensor --hci tcp-server:_:PORT`` running in another process.
``"system"``
    bleak's own platform backend (BlueZ, CoreBluetooth, WinRT); :func:`backend_kwargs`
    then returns no ``backend=``.

The spec comes from ``--transport`` or the ``SENSORD_BLE_TRANSPORT`` environment
variable (default ``"system"``).

Hand the radio to bleak by keyword: ``BleakClient(device, **radio.client_kwargs())``
passes ``backend=BumbleClientBackend`` and ``bumble_radio=radio`` (bleak forwards unknown
keywords to the backend), so there is no module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from bumble import core as bumble_core
from bumble import hci
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

from sensord.errors import ServiceError

log = logging.getLogger(__name__)

#: Environment variable naming the default transport spec.
TRANSPORT_ENV = "SENSORD_BLE_TRANSPORT"
DEFAULT_TRANSPORT = "system"
VIRTUAL_TRANSPORT = "virtual"
#: ATT MTU the central asks for (Polar and Movesense need > 23 for their frames).
REQUESTED_MTU = 247

_AD = bumble_core.AdvertisingData

#: AD type -> byte width of the UUIDs it carries (128-bit when absent).
_UUID_WIDTH: dict[int, int] = {
    int(_AD.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS): 2,
    int(_AD.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS): 2,
    int(_AD.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS): 4,
    int(_AD.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS): 4,
    int(_AD.Type.SERVICE_DATA_16_BIT_UUID): 2,
    int(_AD.Type.SERVICE_DATA_32_BIT_UUID): 4,
}

_PROPERTY_NAMES: tuple[tuple[int, CharacteristicPropertyName], ...] = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


def resolve_transport(spec: str | None) -> str:
    """The transport spec to use: ``spec``, else ``$SENSORD_BLE_TRANSPORT``, else system."""
    if spec:
        return spec
    return os.environ.get(TRANSPORT_ENV, "") or DEFAULT_TRANSPORT


def uuid_str(u: bumble_core.UUID) -> str:
    """A Bumble UUID as bleak's normalised lower-case 128-bit string."""
    return normalize_uuid_str(u.to_hex_str("-"))


# --------------------------------------------------------------------------- radio


class VirtualAir:
    """An in-process radio medium: Bumble controllers on one :class:`LocalLink`.

    Every :class:`VirtualSensor` and every virtual :class:`BumbleRadio` of one test or
    one ``sensord`` process attaches here; addresses are handed out in order.
    """

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._next = 0

    def new_address(self) -> str:
        """A fresh static random address (``C0:5E:D0:00:00:01``, ...)."""
        self._next += 1
        n = self._next
        return f"C0:5E:D0:{(n >> 16) & 0xFF:02X}:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}"

    def new_device(self, name: str, address: str | None = None) -> Device:
        """A Bumble device with its own virtual controller on this link (not powered)."""
        addr = address or self.new_address()
        controller = Controller(name, link=self.link, public_address=addr)
        host = Host(controller, AsyncPipeSink(controller))
        device = Device(name=name, address=hci.Address(addr), host=host)
        return device


async def expose_air(air: VirtualAir, spec: str) -> Any:
    """Attach a virtual controller to ``air`` behind the HCI transport ``spec``.

    Another process (or a Bumble tool) opening the matching client transport (for
    ``tcp-server:127.0.0.1:9000``, ``tcp-client:127.0.0.1:9000``) gets an HCI controller
    on this virtual radio: it sees and connects to the virtual sensors here. Returns the
    transport (close it to stop).
    """
    transport = await open_transport(spec)
    Controller("sensord-hci-bridge", host_source=transport.source,
               host_sink=transport.sink, link=air.link,
               public_address=air.new_address())
    return transport


class BumbleRadio:
    """A Bumble :class:`Device` acting as GATT central, and how to hand it to bleak.

    Create with :meth:`open`; close with :meth:`close` (or ``async with``).
    """

    def __init__(self, device: Device, spec: str, transport: Any | None = None) -> None:
        self.device = device
        self.spec = spec
        self._transport = transport
        #: Bumble allows one pending LE connection at a time per device.
        self.connect_lock = asyncio.Lock()

    @classmethod
    async def open(cls, spec: str, air: VirtualAir | None = None) -> BumbleRadio:
        """Power on a central on ``spec`` (``"virtual"`` needs ``air``).

        Raises
        ------
        ServiceError
            When the transport cannot be opened (no dongle, bad spec).
        """
        if spec == VIRTUAL_TRANSPORT:
            if air is None:
                raise ServiceError("the virtual BLE transport needs a VirtualAir "
                                   "(start virtual sensors in the same process)")
            device = air.new_device("sensord-central")
            await device.power_on()
            return cls(device, spec)
        try:
            transport = await open_transport(spec)
        except Exception as e:  # Bumble raises assorted errors for a bad/missing device
            raise ServiceError(
                f"cannot open BLE transport {spec!r} ({e}); use e.g. usb:0, hci-socket:0, "
                f"tcp-client:127.0.0.1:9000, or {VIRTUAL_TRANSPORT!r}") from e
        device = Device.with_hci("sensord-central", hci.Address("F0:5E:D0:00:00:01"),
                                 transport.source, transport.sink)
        try:
            await device.power_on()
        except Exception as e:
            await transport.close()
            raise ServiceError(f"BLE controller on {spec!r} did not power on ({e})") from e
        return cls(device, spec, transport)

    async def close(self) -> None:
        """Power the central off and close its transport; idempotent."""
        with contextlib.suppress(Exception):
            await self.device.power_off()
        if self._transport is not None:
            t, self._transport = self._transport, None
            with contextlib.suppress(Exception):
                await t.close()

    async def __aenter__(self) -> BumbleRadio:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def scanner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`bleak.BleakScanner`."""
        return {"backend": BumbleScannerBackend, "bumble_radio": self}

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`bleak.BleakClient` / ``establish_connection``."""
        return {"backend": BumbleClientBackend, "bumble_radio": self}


def backend_kwargs(radio: BumbleRadio | None, *, scanner: bool) -> dict[str, Any]:
    """bleak keyword arguments for ``radio``; empty for the system backend (``None``)."""
    if radio is None:
        return {}
    return radio.scanner_kwargs() if scanner else radio.client_kwargs()


@dataclass(frozen=True, slots=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` for a device seen through Bumble."""

    radio: BumbleRadio
    address: hci.Address
    advertisement: Advertisement | None = None


def _radio_from(kwargs: dict[str, Any], device: BLEDevice | str | None) -> BumbleRadio:
    radio = kwargs.get("bumble_radio")
    if radio is None and isinstance(device, BLEDevice) and isinstance(
            device.details, BumbleDeviceDetails):
        radio = device.details.radio
    if not isinstance(radio, BumbleRadio):
        raise BleakError("the Bumble backend needs bumble_radio=<BumbleRadio>")
    return radio


# --------------------------------------------------------------------------- scanner


def parse_advertising_data(adv: Advertisement) -> AdvertisementData:
    """bleak's :class:`AdvertisementData` from a Bumble advertisement report."""
    name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    T = _AD.Type
    for ad_type, raw in adv.data.ad_structures:
        t = int(ad_type)
        if t in (T.COMPLETE_LOCAL_NAME, T.SHORTENED_LOCAL_NAME):
            if name is None or t == T.COMPLETE_LOCAL_NAME:
                name = raw.decode("utf-8", errors="replace")
        elif t in (T.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                   T.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                   T.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
                   T.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
                   T.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                   T.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS):
            width = _UUID_WIDTH.get(t, 16)
            for i in range(0, len(raw) - width + 1, width):
                uuids.append(uuid_str(bumble_core.UUID.from_bytes(raw[i:i + width])))
        elif t == T.MANUFACTURER_SPECIFIC_DATA and len(raw) >= 2:
            manufacturer[int.from_bytes(raw[:2], "little")] = bytes(raw[2:])
        elif t in (T.SERVICE_DATA_16_BIT_UUID, T.SERVICE_DATA_32_BIT_UUID,
                   T.SERVICE_DATA_128_BIT_UUID):
            width = _UUID_WIDTH.get(t, 16)
            if len(raw) >= width:
                key = uuid_str(bumble_core.UUID.from_bytes(raw[:width]))
                service_data[key] = bytes(raw[width:])
        elif t == T.TX_POWER_LEVEL and len(raw) == 1:
            tx_power = int.from_bytes(raw, "little", signed=True)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=int(adv.rssi),
        platform_data=(adv,),
    )


class BumbleScannerBackend(BaseBleakScanner):
    """bleak scanner backend: LE scanning on a :class:`BumbleRadio`."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._radio = _radio_from(kwargs, None)
        self._active = scanning_mode != "passive"
        self._listening = False

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = parse_advertising_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        # Keep what earlier reports (e.g. the scan response) told us.
        key = str(adv.address)
        prev = self.seen_devices.get(key)
        if prev is not None:
            old = prev[1]
            data = data._replace(
                local_name=data.local_name or old.local_name,
                service_uuids=sorted(set(old.service_uuids) | set(data.service_uuids)),
                manufacturer_data={**old.manufacturer_data, **data.manufacturer_data},
                service_data={**old.service_data, **data.service_data},
            )
        details = BumbleDeviceDetails(self._radio, adv.address, adv)
        device = self.create_or_update_device(key, key, data.local_name, details, data)
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        self.seen_devices = {}
        dev = self._radio.device
        if not self._listening:
            dev.on(dev.EVENT_ADVERTISEMENT, self._on_advertisement)
            self._listening = True
        await dev.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        dev = self._radio.device
        if self._listening:
            dev.remove_listener(dev.EVENT_ADVERTISEMENT, self._on_advertisement)
            self._listening = False
        with contextlib.suppress(Exception):
            await dev.stop_scanning()


# --------------------------------------------------------------------------- client


class BumbleClientBackend(BaseBleakClient):
    """bleak client backend: a GATT client over a Bumble LE connection."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        self._radio = _radio_from(kwargs, address_or_ble_device)
        if isinstance(address_or_ble_device, BLEDevice) and isinstance(
                address_or_ble_device.details, BumbleDeviceDetails):
            self._peer_address = address_or_ble_device.details.address
            self._name = address_or_ble_device.name or self.address
        else:
            self._peer_address = hci.Address(self.address)
            self._name = self.address
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return int(self._connection.att_mtu) if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    def _on_disconnection(self, reason: int) -> None:
        was_closing = self._closing
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        log.debug("%s: disconnected (reason 0x%02X)", self.address, reason)
        if not was_closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        timeout = float(kwargs.get("timeout", self._timeout))
        dev = self._radio.device
        self._closing = False
        try:
            async with self._radio.connect_lock:
                if dev.is_scanning:
                    with contextlib.suppress(Exception):
                        await dev.stop_scanning()
                connection = await dev.connect(self._peer_address, timeout=timeout)
        except (bumble_core.TimeoutError, TimeoutError) as e:
            raise TimeoutError(f"{self.address}: connection timed out") from e
        except (bumble_core.BaseBumbleError, hci.HCI_Error) as e:
            raise BleakError(f"{self.address}: connection failed: {e}") from e
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            with contextlib.suppress(Exception):
                await peer.request_mtu(REQUESTED_MTU)
            self.services = await self._discover(peer)
        except Exception as e:
            await self.disconnect()
            raise BleakError(f"{self.address}: service discovery failed: {e}") from e

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        await peer.discover_services()
        for sp in peer.services:
            await sp.discover_characteristics()
            service = BleakGATTService(sp, sp.handle, uuid_str(sp.uuid))
            collection.add_service(service)
            for cp in sp.characteristics:
                await cp.discover_descriptors()
                props = [n for bit, n in _PROPERTY_NAMES if int(cp.properties) & bit]
                char = BleakGATTCharacteristic(
                    cp, cp.handle, uuid_str(cp.uuid), props,
                    lambda: max(self.mtu_size - 3, 20), service)
                collection.add_characteristic(char)
                for dp in cp.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(dp, dp.handle, uuid_str(dp.type), char))
        return collection

    async def disconnect(self) -> None:
        conn = self._connection
        if conn is None:
            return
        self._closing = True
        done = asyncio.get_running_loop().create_future()

        def _done(*_: object) -> None:
            if not done.done():
                done.set_result(None)

        conn.once(conn.EVENT_DISCONNECTION, _done)
        try:
            await conn.disconnect()
            await asyncio.wait_for(done, timeout=5.0)
        except Exception as e:  # already gone, or the controller refused
            log.debug("%s: disconnect: %s", self.address, e)
        finally:
            self._connection = None
            self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported by the sensord Bumble backend")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported by the sensord Bumble backend")

    def _require(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        self._require()
        try:
            value = await characteristic.obj.read_value()
        except bumble_core.BaseBumbleError as e:
            raise BleakError(f"read {characteristic.uuid} failed: {e}") from e
        return bytearray(value)

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        self._require()
        try:
            value = await descriptor.obj.read_value()
        except bumble_core.BaseBumbleError as e:
            raise BleakError(f"read descriptor {descriptor.uuid} failed: {e}") from e
        return bytearray(value)

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic,
                              data: SizedBuffer, response: bool) -> None:
        self._require()
        try:
            await characteristic.obj.write_value(bytes(data), with_response=response)
        except bumble_core.BaseBumbleError as e:
            raise BleakError(f"write {characteristic.uuid} failed: {e}") from e

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor,
                                    data: SizedBuffer) -> None:
        self._require()
        try:
            await descriptor.obj.write_value(bytes(data), with_response=True)
        except bumble_core.BaseBumbleError as e:
            raise BleakError(f"write descriptor {descriptor.uuid} failed: {e}") from e

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        self._require()

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        try:
            await characteristic.obj.subscribe(subscriber, prefer_notify=True)
        except bumble_core.BaseBumbleError as e:
            raise BleakError(f"subscribe {characteristic.uuid} failed: {e}") from e
        self._subscribers[characteristic.handle] = subscriber

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        try:
            await characteristic.obj.unsubscribe(subscriber)
        except bumble_core.BaseBumbleError as e:
            raise BleakError(f"unsubscribe {characteristic.uuid} failed: {e}") from e

