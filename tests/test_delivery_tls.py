"""TLS to the broker: MqttPublisher -> mosquitto (TLS listener) -> sensord ingest -> InfluxDB.

The certificates are made here (a throw-away CA and a server certificate for 127.0.0.1);
the broker is a real mosquitto with TLS on its only listener. Both the publisher and the
bridge (which reads the broker's socket itself, ``_ReadGate``) go through it, with small
and 150 KB messages. (Bytes left decoded inside the SSL object, which ``_ReadGate``
drains, did not occur here: removing that drain does not fail this test.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sensord.contract import BrokerConfig
from sensord.model import RunInfo
from sensord.sinks.mqtt_publisher import MqttPublisher
from tests.servers import (
    InfluxDB1Server,
    IngestProcess,
    MosquittoServer,
    influx_step_indices,
    wait_until,
)
from tests.test_delivery_basic import T0_S, make_steps

pytestmark = pytest.mark.servers


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(d: Path) -> tuple[Path, Path, Path, Path]:
    """(ca.pem, server.pem, server.key, other-ca.pem): a CA, a server certificate for
    127.0.0.1 it signed, and an unrelated CA."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensord test CA")])
    ca = _cert("sensord test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", key, ca_name, ca_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    other = _cert("another CA", other_key, other_name, other_key, ca=True)
    paths = d / "ca.pem", d / "server.pem", d / "server.key", d / "other-ca.pem"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(server))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[3].write_bytes(_pem(other))
    return paths


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, Path, Path]]:
    """A mosquitto whose only listener speaks TLS; yields it, the CA and another CA."""
    ca, cert, key, other = make_pki(tmp_path / "pki")
    server = MosquittoServer(tmp_path / "mqtt-tls",
                             f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
                             "tls_version tlsv1.2\nallow_anonymous true")
    server.start()
    try:
        yield server, ca, other
    finally:
        server.stop()


async def test_steps_cross_tls_both_ways(
    tmp_path: Path, tls_broker: tuple[MosquittoServer, Path, Path], influxdb1: InfluxDB1Server
) -> None:
    mqtt, ca, _ = tls_broker
    influxdb1.create_database("sensord")
    ingest = IngestProcess.between(tmp_path / "ingest", mqtt, influxdb1.url, "--tls",
                                   "--ca-file", str(ca), "--linger-ms", "50")
    await asyncio.to_thread(ingest.start)
    run = RunInfo("tess", "pelvis1", "run-tls", "pelvis")
    steps = make_steps(3000)
    try:
        async with MqttPublisher(BrokerConfig(port=mqtt.port, tls=True, ca_file=str(ca)), run,
                                 epoch_offset_s=T0_S, spool_path=tmp_path / "spool.sqlite") as pub:
            for s in steps[:2000]:  # small messages: several per TLS record
                await pub.publish_step(s)
            await pub.publish_steps(steps[2000:])  # 500-step batch messages, ~150 KB each
            assert await pub.flush(30)

        def stored() -> list[int]:
            return influx_step_indices(influxdb1, "run-tls")

        await asyncio.to_thread(wait_until, lambda: len(stored()) == 3000, 20, "3000 steps")
        assert stored() == list(range(3000))
    finally:
        ingest.stop()
    assert "Traceback" not in ingest.log_tail(100_000)


async def test_untrusted_or_plain_connections_are_refused(
    tls_broker: tuple[MosquittoServer, Path, Path]
) -> None:
    """The broker's certificate is checked (another CA fails), and the TLS listener does
    not speak plain MQTT."""
    mqtt, ca, other = tls_broker
    good = BrokerConfig(port=mqtt.port, tls=True, ca_file=str(ca)).tls_context()
    async with aiomqtt.Client(mqtt.host, mqtt.port, tls_context=good) as c:
        await c.publish("sensord/v1/tess/probe", b"ok", qos=1)
    wrong = BrokerConfig(port=mqtt.port, tls=True, ca_file=str(other)).tls_context()
    with pytest.raises(aiomqtt.MqttError, match=r"certificate verify failed|CERTIFICATE_VERIFY"):
        async with aiomqtt.Client(mqtt.host, mqtt.port, tls_context=wrong, timeout=5):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(mqtt.host, mqtt.port, timeout=5):
            pass
    assert isinstance(good, ssl.SSLContext) and good.verify_mode == ssl.CERT_REQUIRED
