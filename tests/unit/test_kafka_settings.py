"""Kafka security settings: inconsistent ones fail at start-up, consistent ones reach aiokafka."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy_checks import environment
from shared.admin import AdminSettings
from shared.kafka import client_options
from shared.settings import KafkaSettings


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ca")
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test"
    command += f" -keyout {folder / 'ca.key'} -out {folder / 'ca.pem'}"
    subprocess.run(command.split(), check=True, capture_output=True)
    return folder / "ca.pem"


def test_sasl_without_credentials_fails_naming_the_missing_variables() -> None:
    with pytest.raises(ValidationError, match="KAFKA__SASL_PASSWORD"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="baton")


def test_credentials_for_a_protocol_without_sasl_are_refused() -> None:
    with pytest.raises(ValidationError, match="security_protocol is PLAINTEXT"):
        KafkaSettings(sasl_username="baton", sasl_password="secret")


def test_tls_files_for_a_protocol_without_tls_are_refused(ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="security_protocol is SASL_PLAINTEXT"):
        KafkaSettings(
            security_protocol="SASL_PLAINTEXT",
            sasl_username="baton",
            sasl_password="secret",
            ssl_cafile=ca_file,
        )


def test_a_ca_file_that_does_not_exist_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ssl_cafile"):
        KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem")


def test_a_key_without_its_certificate_is_refused(ca_file: Path) -> None:
    with pytest.raises(ValidationError, match="ssl_keyfile"):
        KafkaSettings(security_protocol="SSL", ssl_keyfile=ca_file)


def test_sasl_ssl_from_the_environment_becomes_aiokafka_options(ca_file: Path) -> None:
    with environment(
        {
            "BATON_KAFKA__BOOTSTRAP_SERVERS": "broker-1:9094,broker-2:9094",
            "BATON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "BATON_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "BATON_KAFKA__SASL_USERNAME": "baton",
            "BATON_KAFKA__SASL_PASSWORD": "s3cret",
            "BATON_KAFKA__SSL_CAFILE": str(ca_file),
        }
    ):
        kafka = AdminSettings().kafka
    assert "s3cret" not in repr(kafka), "the password is a secret: never in a repr or a log"
    options = client_options(kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("baton", "s3cret")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_a_single_broker_default_creates_one_replica_of_every_topic() -> None:
    specs = KafkaSettings().topics.specs()
    assert {(s.replication_factor, s.configs["min.insync.replicas"]) for s in specs} == {(1, "1")}


def test_a_cluster_replication_factor_and_min_isr_reach_every_topic_dead_letters_included() -> None:
    with environment(
        {"BATON_KAFKA__REPLICATION_FACTOR": "3", "BATON_KAFKA__MIN_INSYNC_REPLICAS": "2"}
    ):
        specs = AdminSettings().kafka.topics.specs()
    assert {s.name for s in specs} >= {"handoff.routed.v1", "handoff.routed.v1.dlq"}
    assert {(s.replication_factor, s.configs["min.insync.replicas"]) for s in specs} == {(3, "2")}
    compacted = [s for s in specs if s.configs.get("cleanup.policy") == "compact"]
    assert compacted and all(s.configs["min.insync.replicas"] == "2" for s in compacted)


def test_a_min_isr_above_the_replication_factor_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="no write could ever succeed"):
        KafkaSettings(replication_factor=2, min_insync_replicas=3)
