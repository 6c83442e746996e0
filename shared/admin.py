"""`python -m shared.admin topics`: create every topic of the registry (idempotent).

Reads the Kafka settings from the environment with the prefix BATON_ (e.g.
BATON_KAFKA__BOOTSTRAP_SERVERS, BATON_KAFKA__TOPIC_PREFIX, BATON_KAFKA__PARTITIONS,
BATON_KAFKA__REPLICATION_FACTOR and BATON_KAFKA__MIN_INSYNC_REPLICAS on a cluster, and the
security settings BATON_KAFKA__SECURITY_PROTOCOL, BATON_KAFKA__SASL_MECHANISM, ...).
Exit status 0 when every topic exists, 1 when Kafka could not be reached or refused us (the
reason is logged just before), 2 for a usage or settings error.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from shared.kafka import KafkaUnavailable, ensure_topics
from shared.settings import KafkaSettings, ServiceSettings


class AdminSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_", env_nested_delimiter="__")


def describe(kafka: KafkaSettings) -> str:
    """Where and how we connect, for error messages (never the password)."""
    how: str = kafka.security_protocol
    if how.startswith("SASL"):
        how += f", {kafka.sasl_mechanism or 'PLAIN'} as {kafka.sasl_username!r}"
    return f"{kafka.bootstrap_servers} ({how})"


def main(argv: list[str]) -> int:
    """Entry point."""
    if argv[1:] != ["topics"]:
        print("usage: python -m shared.admin topics", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = AdminSettings()
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(ensure_topics(settings.kafka))
    except (KafkaError, KafkaUnavailable) as exc:
        print(f"cannot create topics on {describe(settings.kafka)}: {exc}", file=sys.stderr)
        return 1
    for spec in settings.kafka.topics.specs():
        compacted = spec.configs.get("cleanup.policy") == "compact"
        replicas = f", {spec.replication_factor} replicas" if spec.replication_factor > 1 else ""
        kind = ", compacted" if compacted else ""
        print(f"  {spec.name} ({spec.partitions} partitions{replicas}{kind})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
