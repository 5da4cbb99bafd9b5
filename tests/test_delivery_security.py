"""The shipped mosquitto config refuses anonymous clients and cross-runner writes."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.servers import MosquittoServer, make_passwd_file

pytestmark = pytest.mark.servers

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "mosquitto"
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "sensord-ingest": "ingest-pw-3"}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[MosquittoServer]:
    """mosquitto with the shipped mosquitto.conf + acl; only ports and paths changed."""
    passwd = make_passwd_file(tmp_path / "passwd", PASSWORDS)
    acl = tmp_path / "acl"
    acl.write_text((CONFIG_DIR / "acl").read_text())
    conf = (CONFIG_DIR / "mosquitto.conf").read_text()
    conf = re.sub(r"(?m)^listener 1883 127\.0\.0\.1$", "listener {port} 127.0.0.1", conf)
    conf = re.sub(r"(?m)^password_file .*$", f"password_file {passwd}", conf)
    conf = re.sub(r"(?m)^acl_file .*$", f"acl_file {acl}", conf)
    conf = re.sub(r"(?m)^persistence_location .*$", "persistence_location {workdir}/", conf)
    assert "allow_anonymous false" in conf
    server = MosquittoServer(tmp_path / "mosquitto", raw_config=conf)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(
    server: MosquittoServer,
    user: str | None,
    password: str | None = None,
    identifier: str | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        server.host,
        server.port,
        username=user,
        password=password if password is not None else PASSWORDS.get(user or ""),
        identifier=identifier or f"test-{user}",
        timeout=10,
    )


async def test_client_without_credentials_is_refused(secured: MosquittoServer) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(secured, None):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with client(secured, "alice", "wrong-password"):
            pass
    async with client(secured, "alice"):  # the right password works
        pass


async def _try_publish(server: MosquittoServer, user: str, topic: str) -> None:
    """Publish once; mosquitto 2.0 may drop the denied message or the whole connection."""
    with contextlib.suppress(aiomqtt.MqttError):
        async with client(server, user) as c:
            await c.publish(topic, b"forged by " + user.encode(), qos=1)


async def test_runner_cannot_write_another_runners_topics(secured: MosquittoServer) -> None:
    async with client(secured, "sensord-ingest") as ingest:
        await ingest.subscribe("$share/g/sensord/v1/+/+/steps", qos=1)
        await ingest.subscribe("sensord/v1/_deadletter", qos=1)
        # bob tries alice's topic and the dead-letter topic, then publishes on his own.
        # The broker handles these in order, so had the ACL let a forged message through,
        # it would reach the subscriber before bob's own message.
        await _try_publish(secured, "bob", "sensord/v1/alice/pelvis1/steps")
        await _try_publish(secured, "bob", "sensord/v1/_deadletter")
        async with client(secured, "bob") as bob:
            await bob.publish("sensord/v1/bob/pelvis1/steps", b"own", qos=1)
        async for message in ingest.messages:
            assert message.topic.value == "sensord/v1/bob/pelvis1/steps"
            assert message.payload == b"own"
            break


async def test_runner_cannot_read_another_runners_topics(secured: MosquittoServer) -> None:
    async with client(secured, "bob") as bob:
        await bob.subscribe("sensord/v1/alice/#", qos=1)
        await bob.subscribe("sensord/v1/bob/#", qos=1)
        async with client(secured, "alice") as alice:
            await alice.publish("sensord/v1/alice/pelvis1/steps", b"alice's", qos=1)
        await _try_publish(secured, "alice", "sensord/v1/bob/pelvis1/steps")
        async with client(secured, "bob", identifier="bob-2") as bob2:
            await bob2.publish("sensord/v1/bob/pelvis1/steps", b"bob's", qos=1)
        async for message in bob.messages:
            assert message.payload == b"bob's"
            break
