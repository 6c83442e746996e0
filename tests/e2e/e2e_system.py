"""What end-to-end tests share: the running system and its API key."""

from __future__ import annotations

from dataclasses import dataclass

from support import ServiceProcess

API_KEY = "e2e-key-0123456789abcdef"


@dataclass
class System:
    intake: ServiceProcess
    routing: ServiceProcess
    sla: ServiceProcess
    metrics: ServiceProcess

    @property
    def all(self) -> list[ServiceProcess]:
        return [self.intake, self.routing, self.sla, self.metrics]
