"""The services over a Kafka that speaks only mutual TLS (tests/support/tls_broker.py): an order posted to
order-capture travels outbox -> relay (producer) -> broker -> query-api's projection (consumer group), with the
reference data order-capture consumes back from the broker on the way; librdkafka reads every record back over
TLS too. A client that trusts another CA, has no client certificate or speaks plaintext gets nowhere.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from sellthrough_runtime.kafka import ensure_topics, make_producer
from sellthrough_runtime.kafka_security import KafkaSecuritySettings, librdkafka_security
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import order
from tests.support.record_check import contract_breaches
from tests.support.services import running_with_reference_data
from tests.support.tls import CertificateAuthority
from tests.support.tls_broker import TlsEndpoint, tls_broker

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
RANGE = {"from": str(TODAY - timedelta(days=7)), "to": str(TODAY + timedelta(days=1))}


@pytest.fixture(scope="module")
def endpoint(infra: Infra) -> Iterator[TlsEndpoint]:
    with tls_broker(infra.work_dir / "tls") as endpoint:
        asyncio.run(ensure_topics(endpoint.bootstrap_servers, security=endpoint.security()))
        yield endpoint


def test_services_capture_and_project_an_order_over_mutual_tls(
    infra: Infra, tokens: Tokens, endpoint: TlsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    over_tls = Infra(infra.database_url, endpoint.bootstrap_servers, infra.work_dir / "over-tls")
    over_tls.work_dir.mkdir()
    services = ["order-capture", "query-api"]
    # running_with_reference_data waits until order-capture has consumed the reference data from the broker.
    with running_with_reference_data(over_tls, tokens, services, endpoint.environment()) as running:
        api = Api(running, tokens)
        api.post([order("O1", [("S1", 3)]), order("O4", [("S3", 5)])])

        def projected() -> bool:
            rows = {row["id"]: row["units"] for row in api.get("/v1/sales", level="outlet", **RANGE)["rows"]}
            return rows.get("O1") == 3 and rows.get("O4") == 5

        api.wait(projected, "orders sent over TLS")
        ready = api.query.get("/readyz")
        assert ready.status_code == 200, ready.text
    assert "accepted connection" in endpoint.stunnel_log.read_text(), "the clients came through the TLS terminator"

    # librdkafka, configured from the same variables, reads what the services wrote, over TLS.
    for name, value in endpoint.environment().items():
        monkeypatch.setenv(name, value)
    read, breaches = contract_breaches(endpoint.bootstrap_servers)
    assert not breaches
    assert read >= 2


async def _bootstraps(endpoint: TlsEndpoint, security: KafkaSecuritySettings) -> bool:
    producer = make_producer(endpoint.bootstrap_servers, "tls-probe", security=security)
    try:
        await asyncio.wait_for(producer.start(), 20)
    except KafkaConnectionError:
        return False
    finally:
        await producer.stop()
    return True


async def test_a_client_trusting_another_ca_is_refused(endpoint: TlsEndpoint, tmp_path: Path) -> None:
    assert await _bootstraps(endpoint, endpoint.security()), "control: the right CA and certificate work"
    other_ca = CertificateAuthority.create(tmp_path, "someone-elses-ca")
    wrong_trust = endpoint.security().model_copy(update={"kafka_ssl_ca_file": other_ca.cert_file})
    assert not await _bootstraps(endpoint, wrong_trust)


async def test_a_client_without_a_certificate_or_without_tls_is_refused(endpoint: TlsEndpoint) -> None:
    no_certificate = KafkaSecuritySettings(kafka_security_protocol="SSL", kafka_ssl_ca_file=endpoint.ca.cert_file)
    assert not await _bootstraps(endpoint, no_certificate)
    assert not await _bootstraps(endpoint, KafkaSecuritySettings(kafka_security_protocol="PLAINTEXT"))


def test_librdkafka_trusting_another_ca_is_refused(endpoint: TlsEndpoint, tmp_path: Path) -> None:
    right: dict[str, str | int | float | bool] = {
        "bootstrap.servers": endpoint.bootstrap_servers,
        **librdkafka_security(endpoint.security()),
    }
    assert AdminClient(right).list_topics(timeout=15).topics, "control: the right CA lists the topics"
    other_ca = CertificateAuthority.create(tmp_path, "someone-elses-ca")
    wrong: dict[str, str | int | float | bool] = {**right, "ssl.ca.location": str(other_ca.cert_file)}
    with pytest.raises(KafkaException):
        AdminClient(wrong).list_topics(timeout=5)
