"""deploy/compose.yaml, checked without a Docker engine: the compose-spec schema, and every path,
port and Baton environment variable it names exists (variables against each service's pydantic
Settings, ports against the port setting, Prometheus targets against the services)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from deploy_checks import (
    DEPLOY,
    REPO,
    SETTINGS,
    TOPICS_SETTINGS,
    env_names,
    environment,
    foreign_prefix,
    interpolate,
    run_tool,
    startable,
)
from shared import serve

COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "compose" / "prometheus.yml"

OPS_PATHS = (
    "prometheus/rules",
    "alertmanager/alertmanager.yml",
    "grafana/dashboards",
    "grafana/provisioning/datasources",
    "grafana/provisioning/dashboards",
)
"""Mounted from the ops work (rules, Alertmanager routes, dashboards), which lands separately:
their existence test skips while they are absent, every other path must exist."""


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def baton_services() -> dict[str, dict[str, Any]]:
    """The services run from Baton's image."""
    return {name: s for name, s in services().items() if "build" in s}


def settings_of(service: dict[str, Any]) -> type[BaseSettings]:
    """Which Settings class the container's command reads."""
    if service.get("entrypoint") == ["python", "-m", "shared.admin"]:
        assert service["command"] == ["topics"]
        return TOPICS_SETTINGS
    command = service["command"]
    assert len(command) == 1 and command[0] in serve.SERVICES, command
    return SETTINGS[command[0]]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as compose gives it when nothing is exported."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value)) for key, value in env.items()}


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}
    return ports | {int(p) for p in service.get("expose", [])}


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path relative to deploy/, container path) of every bind mount."""
    out = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            out.append((source, target))
    return out


def test_compose_file_matches_the_compose_spec() -> None:
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_build_points_at_the_dockerfile() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, service in baton_services().items():
        assert service["image"] == f"baton:{version}", "the tag `make image` builds"
        context = (DEPLOY / service["build"]["context"]).resolve()
        assert context == REPO, f"{name}: the build context is the repository root"
        assert (context / service["build"]["dockerfile"]).is_file()


def test_every_baton_variable_is_a_setting_of_the_service_that_gets_it() -> None:
    for name, service in baton_services().items():
        settings = settings_of(service)
        known = env_names(settings)
        for key in environment_of(service):
            assert foreign_prefix(key, settings) is None, f"{name}: {key} is another service's"
            assert key in known, f"{name}: {key} is not a setting of {settings.__module__}"


def test_every_service_accepts_its_compose_environment() -> None:
    for service in baton_services().values():
        with environment(environment_of(service)):
            startable(settings_of(service))  # raises naming the bad or missing variable


def test_service_ports_are_the_ports_the_services_listen_on() -> None:
    for name, service in baton_services().items():
        if name == "topics":
            assert "ports" not in service
            continue
        with environment(environment_of(service)):
            port = startable(settings_of(service)).port
        assert container_ports(service) == {port}, name


def test_services_reach_kafka_on_an_advertised_listener() -> None:
    kafka = environment_of(services()["kafka"])
    advertised = {a.split("://", 1)[1] for a in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    listening = {int(a.rsplit(":", 1)[1]) for a in kafka["KAFKA_LISTENERS"].split(",")}
    for name, service in baton_services().items():
        env = environment_of(service)
        [bootstrap] = [v for k, v in env.items() if k.endswith("KAFKA__BOOTSTRAP_SERVERS")]
        assert bootstrap in advertised, f"{name}: {bootstrap} is not advertised by kafka"
        assert int(bootstrap.rsplit(":", 1)[1]) in listening
        assert "kafka" in service["depends_on"] or "topics" in service["depends_on"]


def test_dependencies_name_services_of_the_file() -> None:
    names = set(services())
    for name, service in services().items():
        depends = service.get("depends_on", [])
        assert set(depends) <= names, f"{name} depends on {set(depends) - names}"


def test_routing_reads_the_process_map_that_is_mounted() -> None:
    routing = services()["routing"]
    mounted = dict((target, source) for source, target in mounts(routing))
    path = environment_of(routing)["ROUTING_PROCESS_MAP"]
    assert (DEPLOY / mounted[path]).resolve() == DEPLOY / "process-map.yaml"


def test_every_mounted_path_exists() -> None:
    for name, service in services().items():
        for source, _ in mounts(service):
            if source.removeprefix("./") in OPS_PATHS:
                continue
            assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"


@pytest.mark.parametrize("path", OPS_PATHS)
def test_ops_files_mounted_exist(path: str) -> None:
    mounted = {s.removeprefix("./") for svc in services().values() for s, _ in mounts(svc)}
    assert path in mounted, f"{path} is no longer mounted: update OPS_PATHS"
    if not (DEPLOY / path).exists():
        pytest.skip(f"deploy/{path} not generated yet (the ops work)")
    if (DEPLOY / path).is_dir():
        assert any((DEPLOY / path).iterdir()), f"deploy/{path} is empty"


def prometheus_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PROMETHEUS.read_text())
    return data


def test_prometheus_scrapes_each_service_on_its_port() -> None:
    config = prometheus_config()
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    for name, service in baton_services().items():
        if name == "topics":
            continue
        port = next(iter(container_ports(service)))
        assert targets.get(f"baton-{name}") == [f"{name}:{port}"], name
    [alerting] = config["alerting"]["alertmanagers"]
    [target] = alerting["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert int(port) in container_ports(services()[host])
    rules = next(t for s, t in mounts(services()["prometheus"]) if "rules" in s)
    assert config["rule_files"] == [f"{rules}/*.yml"]


def test_prometheus_jobs_are_the_ones_the_rules_name() -> None:
    rules = DEPLOY / "prometheus" / "rules"
    if not rules.exists():
        pytest.skip("deploy/prometheus/rules not generated yet (the ops work)")
    named = {
        job
        for file in rules.glob("*.yml")
        for job in re.findall(r'job(?:=~?|: )"?([a-z0-9|-]+)', file.read_text())
        for job in job.split("|")
        if job.startswith("baton-")
    }
    jobs = {job["job_name"] for job in prometheus_config()["scrape_configs"]}
    assert named <= jobs, (
        f"the rules name jobs compose's Prometheus does not scrape: {named - jobs}"
    )


def test_prometheus_config_passes_promtool_when_installed() -> None:
    found = shutil.which("promtool")  # Debian's, installed by deploy/system-deps.sh
    if found is None:
        pytest.skip("promtool not installed (make deps)")
    promtool = Path(found)
    result = subprocess.run(
        [str(promtool), "check", "config", "--syntax-only", str(PROMETHEUS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_finds_the_mounted_dashboards_and_prometheus() -> None:
    grafana = services()["grafana"]
    providers = DEPLOY / "grafana" / "provisioning" / "dashboards"
    datasources = DEPLOY / "grafana" / "provisioning" / "datasources"
    if not providers.exists() or not datasources.exists():
        pytest.skip("deploy/grafana/provisioning not generated yet (the ops work)")
    targets = {t for _, t in mounts(grafana)}
    for file in providers.glob("*.yaml"):
        for provider in yaml.safe_load(file.read_text()).get("providers", []):
            path = Path(provider["options"]["path"])
            assert any(path == Path(t) or Path(t) in path.parents for t in targets), (
                f"{file.name}: dashboards path {path} is not mounted in compose's grafana"
            )
    env = environment_of(grafana)
    for file in datasources.glob("*.yaml"):
        for source in yaml.safe_load(file.read_text()).get("datasources", []):
            if source.get("type") != "prometheus":
                continue
            url = str(source["url"])
            variables = [v for v in env if f"${v}" in url or f"${{{v}}}" in url]
            resolved = env[variables[0]] if variables else url
            assert resolved == "http://prometheus:9090", (
                f"{file.name}: {url} does not reach compose's prometheus"
            )


JVM_ONLY = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS"}
"""Read by the image's start scripts, not broker configs."""

CONFIG_NAMES = """
public class ConfigNames {
  public static void main(String[] args) {
    for (String name : org.apache.kafka.server.config.AbstractKafkaConfig.CONFIG_DEF.names())
      System.out.println(name);
  }
}
"""


def test_kafka_variables_are_configs_of_the_broker_version_the_image_runs(tmp_path: Path) -> None:
    """apache/kafka maps KAFKA_A_B__C to the broker config a.b_c: a misspelt one would be
    ignored silently, so every one is looked up in the broker's own config definitions."""
    kafka = services()["kafka"]
    version = kafka["image"].split(":", 1)[1]
    kafka_sh = (DEPLOY / "kafka" / "kafka.sh").read_text()
    assert f'KAFKA_VERSION="${{KAFKA_VERSION:-{version}}}"' in kafka_sh, "same Kafka as make run"
    libs = REPO / ".cache" / "kafka" / version / "libs"
    if not libs.exists():
        pytest.skip(f"Kafka {version} jars not fetched (make kafka-fetch)")
    source = tmp_path / "ConfigNames.java"
    source.write_text(CONFIG_NAMES)
    names = set(
        subprocess.run(
            ["java", "-cp", f"{libs}/*", str(source)], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "controller.quorum.voters" in names
    for key in environment_of(kafka):
        if key == "CLUSTER_ID" or key in JVM_ONLY:
            continue
        assert key.startswith("KAFKA_"), key
        config = key[6:].lower().replace("___", "-").replace("__", "\0").replace("_", ".")
        assert config.replace("\0", "_") in names, f"{key}: no broker config of that name"
