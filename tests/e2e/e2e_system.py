"""What end-to-end tests share: the running system and its API key."""

from __future__ import annotations

from dataclasses import dataclass

from builders import TEST_KEY
from shared.settings import KafkaSettings
from support import ServiceProcess

API_KEY = TEST_KEY
"""Every service of the running system takes this key (admin, every process)."""


@dataclass
class System:
    intake: ServiceProcess
    routing: ServiceProcess
    sla: ServiceProcess
    metrics: ServiceProcess
    kafka: KafkaSettings

    @property
    def all(self) -> list[ServiceProcess]:
        return [self.intake, self.routing, self.sla, self.metrics]
