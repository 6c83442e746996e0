"""`python -m shared.admin topics`: create every topic of the registry (idempotent).

Reads the Kafka settings from the environment with the prefix BATON_ (e.g.
BATON_KAFKA__BOOTSTRAP_SERVERS, BATON_KAFKA__TOPIC_PREFIX, BATON_KAFKA__PARTITIONS).
"""

from __future__ import annotations

import asyncio
import sys

from pydantic_settings import SettingsConfigDict

from shared.kafka import ensure_topics
from shared.settings import ServiceSettings


class AdminSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_", env_nested_delimiter="__")


def main(argv: list[str]) -> int:
    """Entry point."""
    if argv[1:] != ["topics"]:
        print("usage: python -m shared.admin topics", file=sys.stderr)
        return 2
    settings = AdminSettings()
    asyncio.run(ensure_topics(settings.kafka))
    for spec in settings.kafka.topics.specs():
        compacted = spec.configs.get("cleanup.policy") == "compact"
        print(f"  {spec.name} ({spec.partitions} partitions{', compacted' if compacted else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
