"""What the generated files depend on besides the map: base URLs, rule timing, thresholds."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RUNBOOK = "https://baton.example.org/deploy/prometheus/RUNBOOK.md"
"""Where deploy/prometheus/RUNBOOK.md is published (set --runbook-url to your git host's URL)."""


@dataclass(frozen=True)
class Links:
    """Base URLs that annotations and dashboard links point at."""

    grafana: str = "http://127.0.0.1:3000"
    sla: str = "http://127.0.0.1:8003"
    runbook: str = DEFAULT_RUNBOOK

    def runbook_for(self, alertname: str) -> str:
        """The runbook section of an alert (GitHub/GitLab style heading anchors)."""
        return f"{self.runbook}#{alertname.lower()}"

    def dashboard(self, uid: str, slug: str, query: str = "") -> str:
        """A Grafana dashboard URL, with `query` (already encoded or templated)."""
        url = f"{self.grafana.rstrip('/')}/d/{uid}/{slug}"
        return f"{url}?{query}" if query else url

    def overdue_list(self, from_team: str, to_team: str) -> str:
        """sla's list of overdue handoffs of a pair (GET /v1/handoffs?view=overdue)."""
        return f"{self.sla.rstrip('/')}/v1/handoffs?view=overdue&from={from_team}&to={to_team}"


@dataclass(frozen=True)
class Profile:
    """Rule timing. The default suits production; end-to-end tests shrink it to seconds."""

    interval: str = "30s"
    """Evaluation interval of the short windows and of the alerts."""
    long_interval: str = "2m"
    """Evaluation interval of the 1d, 3d, 30d and calendar-month windows."""
    hold: bool = True
    """Keep each alert's `for:` (False: fire on the first evaluation that is true)."""
    min_page_events: int = 10
    """Low-traffic guard: a page tier needs this many decided targets in its long window."""
    max_lag_records: int = 1000
    max_breach_delay_seconds: float = 1.0
    overdue_escalation_seconds: int = 86400


@dataclass(frozen=True)
class Jobs:
    """Prometheus job names of the four services (prometheus.yml scrapes them under these)."""

    intake: str = "baton-intake"
    routing: str = "baton-routing"
    sla: str = "baton-sla"
    metrics: str = "baton-metrics"

    def all(self) -> tuple[str, ...]:
        return (self.intake, self.routing, self.sla, self.metrics)


@dataclass(frozen=True)
class OpsSettings:
    """Everything `generate` takes besides the map."""

    links: Links = Links()
    profile: Profile = Profile()
    jobs: Jobs = Jobs()
    holiday_years: tuple[int, ...] = ()
    """Years whose public holidays Alertmanager's time intervals list (explicit dates always)."""
    platform_email: str = "baton-platform@example.org"
    """Who runs Baton: platform alerts (services down, lag, dead letters) and unknown teams."""
    smtp_smarthost: str = "127.0.0.1:25"
    smtp_from: str = "baton-alerts@example.org"
    prometheus_url: str = "${PROMETHEUS_URL}"
    """Grafana's datasource URL: by default read from Grafana's environment (Grafana expands
    variables in provisioning files), e.g. http://prometheus:9090 in deploy/compose.yaml."""
    dashboards_path: str = "/var/lib/grafana/dashboards"
    """Where Grafana finds deploy/grafana/dashboards (mount it there, as compose does)."""
    group_wait: str = "30s"
    """How long Alertmanager gathers a new group's alerts before the first notification."""
    webhook_url: str | None = None
    """Also deliver every notification to this webhook (a chat bridge; the end-to-end test)."""
