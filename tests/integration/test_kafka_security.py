"""Kafka security, proved against a real broker with a SASL_SSL listener (SCRAM-SHA-512): the
TLS material and the SCRAM users are made by deploy/kafka/secure.sh for this test, and every
client is configured from the environment, as a deployment configures it.

- Baton's own wrappers (topic creation, Publisher, ConsumerLoop, read_table) produce and
  consume through it, and the four services run their whole flow through it;
- a wrong password is refused, and the error says so;
- a broker certificate the client's CA bundle did not sign is refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from builders import ADMIN_KEYS_JSON, AUTH, event
from deploy_checks import environment
from shared.admin import AdminSettings
from shared.events import Envelope
from shared.kafka import (
    ConsumerLoop,
    Outbound,
    ProcessedCounter,
    Publisher,
    Source,
    read_table,
)
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import REPO, Broker, ServiceProcess, wait_for

PORT = int(os.environ.get("BATON_TEST_SECURE_KAFKA_PORT", "19292"))
USER, PASSWORD = "baton", "scram-password-for-tests"


@dataclass(frozen=True)
class SecuredBroker:
    broker: Broker
    ca: Path

    def env(self, prefix: str, password: str = PASSWORD, ca: Path | None = None) -> dict[str, str]:
        """What a deployment sets for one service (prefix INTAKE_, ..., BATON_ for the admin)."""
        return {
            f"{prefix}KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap,
            f"{prefix}KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            f"{prefix}KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            f"{prefix}KAFKA__SASL_USERNAME": USER,
            f"{prefix}KAFKA__SASL_PASSWORD": password,
            f"{prefix}KAFKA__SSL_CAFILE": str(ca or self.ca),
        }

    def settings(self, password: str = PASSWORD, ca: Path | None = None) -> KafkaSettings:
        """KafkaSettings read from that environment, with a topic prefix of their own."""
        env = self.env("BATON_", password, ca)
        env["BATON_KAFKA__TOPIC_PREFIX"] = f"s{uuid.uuid4().hex[:8]}."
        env["BATON_KAFKA__PARTITIONS"] = "2"
        with environment(env):
            return AdminSettings().kafka


def secure_material(folder: Path) -> dict[str, str]:
    """Run secure.sh into `folder`; returns kafka.sh's environment from its broker.env."""
    subprocess.run(
        [str(REPO / "deploy" / "kafka" / "secure.sh"), str(folder), USER, PASSWORD],
        check=True,
        capture_output=True,
    )
    env: dict[str, str] = {}
    for line in (folder / "broker.env").read_text().splitlines():
        for word in shlex.split(line):
            key, _, value = word.partition("=")
            env[key] = value
    return env


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    folder = tmp_path_factory.mktemp("kafka-tls")
    broker = Broker(PORT, "secure", secure_material(folder))
    broker.clean()
    broker.start()
    yield SecuredBroker(broker, folder / "ca.pem")
    broker.clean()


def admin_topics(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m shared.admin topics`, as the image's topic Job runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    return subprocess.run(
        [sys.executable, "-m", "shared.admin", "topics"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


async def test_wrappers_produce_and_consume_over_sasl_ssl_with_scram_sha_512(
    secured: SecuredBroker,
) -> None:
    kafka = secured.settings()
    assert kafka.security_protocol == "SASL_SSL" and kafka.sasl_mechanism == "SCRAM-SHA-512"
    env = secured.env("BATON_") | {"BATON_KAFKA__TOPIC_PREFIX": kafka.topic_prefix}
    env["BATON_KAFKA__PARTITIONS"] = str(kafka.partitions)
    created = admin_topics(env)
    assert created.returncode == 0, created.stderr
    assert kafka.topics.name(Stream.RAW) in created.stdout

    raw, routed = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    seen: list[Envelope] = []

    async def handle(envelope: Envelope, source: Source) -> list[Outbound]:
        assert source[0] == raw
        seen.append(envelope)
        return [Outbound(routed, envelope)]

    publisher = Publisher(kafka, client_id="security-test")
    consumer_side = Publisher(kafka, client_id="security-test-loop")
    loop = ConsumerLoop(
        kafka=kafka,
        topics=[raw],
        group_id=kafka.group("security-test"),
        handler=handle,
        publisher=consumer_side,
        dlq_topic=lambda _topic: kafka.topics.dlq(Stream.RAW),
        processed=ProcessedCounter(CollectorRegistry()),
        known_event_types=frozenset({"handoff.submitted"}),
    )
    envelopes = [event("submitted", f"h-{i}") for i in range(5)]
    try:
        async with asyncio.timeout(60):
            await publisher.start(wait=True)
            await publisher.publish_many([Outbound(raw, e) for e in envelopes])
        await loop.start()
        await wait_for(lambda: len(seen) >= len(envelopes), within=60, what="consumed over TLS")
        assert {e.event_id for e in seen} == {e.event_id for e in envelopes}

        async def all_routed() -> dict[bytes, bytes | None] | None:
            table = await read_table(kafka, routed)
            return table if len(table) == len(envelopes) else None

        table = await wait_for(all_routed, within=30, what="the loop's outputs read back")
        assert {Envelope.from_bytes(v).event_id for v in table.values() if v} == {
            e.event_id for e in envelopes
        }
    finally:
        await loop.stop()
        await consumer_side.stop()
        await publisher.stop()


async def test_wrong_password_is_refused_with_the_reason(
    secured: SecuredBroker, caplog: pytest.LogCaptureFixture
) -> None:
    refused = admin_topics(secured.env("BATON_", password="not-the-password"))
    assert refused.returncode == 1
    assert "SaslAuthenticationFailed" in refused.stderr, refused.stderr
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in refused.stderr
    assert f"SASL_SSL, SCRAM-SHA-512 as '{USER}'" in refused.stderr
    assert "not-the-password" not in refused.stderr, "the password must never be printed"

    caplog.set_level(logging.ERROR, logger="aiokafka")
    publisher = Publisher(secured.settings(password="not-the-password"), client_id="wrong")
    await publisher.start()
    try:

        def refusal_logged() -> bool:
            return any("invalid credentials" in r.getMessage() for r in caplog.records)

        await wait_for(refusal_logged, within=30, what="the refusal in the log")
        assert not publisher.ready
    finally:
        await publisher.stop()


async def test_broker_certificate_from_an_unknown_authority_is_refused(
    secured: SecuredBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    secure_material(other)  # another CA, which never signed the broker's certificate
    caplog.set_level(logging.ERROR, logger="aiokafka")
    publisher = Publisher(secured.settings(ca=other / "ca.pem"), client_id="untrusted")
    await publisher.start()
    try:

        def refusal_logged() -> bool:
            return any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)

        await wait_for(refusal_logged, within=30, what="the certificate refusal in the log")
        assert not publisher.ready
    finally:
        await publisher.stop()


@pytest.fixture
async def secured_system(secured: SecuredBroker) -> AsyncIterator[dict[str, ServiceProcess]]:
    """The four services, configured from the environment for the secured broker."""
    prefix = f"e{uuid.uuid4().hex[:8]}."
    topics = secured.env("BATON_") | {"BATON_KAFKA__TOPIC_PREFIX": prefix}
    created = admin_topics(topics | {"BATON_KAFKA__PARTITIONS": "2"})
    assert created.returncode == 0, created.stderr
    extra: dict[str, dict[str, str]] = {
        "intake": {},
        "routing": {"ROUTING_PROCESS_MAP": str(REPO / "deploy" / "process-map.yaml")},
        "sla": {},
        "metrics": {"METRICS_HISTORY_PATH": str(REPO / ".run" / "test-history" / f"{prefix}db")},
    }
    procs = {}
    for name, more in extra.items():
        p = f"{name.upper()}_"
        env = secured.env(p) | {
            f"{p}KAFKA__TOPIC_PREFIX": prefix,
            f"{p}KAFKA__PARTITIONS": "2",
            f"{p}API_KEYS": ADMIN_KEYS_JSON,
        }
        procs[name] = ServiceProcess(f"{name}.main", env | more, f"secure-{name}")
    for proc in procs.values():
        proc.start()
    try:
        await asyncio.gather(*(p.ready(within=90) for p in procs.values()))
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


async def test_the_four_services_run_their_flow_over_sasl_ssl(
    secured_system: dict[str, ServiceProcess],
) -> None:
    handoff_id = f"tls-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=secured_system["intake"].url, headers=AUTH) as client:
        posted = await client.post(
            "/v1/handoffs",
            json={
                "handoff_id": handoff_id,
                "event_id": f"{handoff_id}-s",
                "case_id": "INC-TLS",
                "kind": "heartbeat",
                "from": "service-desk",
                "priority": "P3",
            },
        )
        assert posted.status_code == 202, posted.text
        accepted = await client.post(
            f"/v1/handoffs/{handoff_id}/events",
            json={"type": "accepted", "event_id": f"{handoff_id}-a"},
        )
        assert accepted.status_code == 202, accepted.text

    async def response_met() -> dict[str, object] | None:
        async with httpx.AsyncClient(base_url=secured_system["sla"].url, headers=AUTH) as client:
            r = await client.get(f"/v1/handoffs/{handoff_id}")
        if r.status_code != 200:
            return None
        clocks = {c["clock"]: c["outcome"] for c in r.json()["clocks"]}
        return r.json() if clocks.get("response") == "met" else None

    body = await wait_for(response_met, within=60, what="sla's decision (transactions over TLS)")
    assert body["to"] == "it-l2-network"

    async def opened_counted() -> bool:
        async with httpx.AsyncClient(base_url=secured_system["metrics"].url) as client:
            text = (await client.get("/metrics")).text
        return any(
            line.startswith("handoff_opened_total{")
            and "it-l2-network" in line
            and not line.endswith(" 0.0")
            for line in text.splitlines()
        )

    await wait_for(opened_counted, within=60, what="metrics counting the handoff")
