"""Kafka security settings: read from KAFKA_* variables, refused at start when the combination cannot work, and
turned into configurations that aiokafka and librdkafka (confluent-kafka) both accept.

SASL is not exercised against a broker here: Tansu 0.6.0 keeps its SCRAM users in its storage, and with the only
storage it has in these tests (memory) a user cannot be created once `--authentication` is on (the `tansu user
create` request is itself refused as unauthenticated). So the SASL configurations are checked by building real
clients of both libraries from them, which validate mechanism, protocol and credentials at construction.
"""

import ssl
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from pydantic import ValidationError

from sellthrough_runtime.kafka import client_security, make_admin, make_consumer, make_offsets_reader, make_producer
from sellthrough_runtime.kafka_security import KafkaSecuritySettings, aiokafka_security, librdkafka_security
from sellthrough_runtime.settings import ServiceSettings
from tests.support.tls import CertificateAuthority

VARIABLES = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SSL_CA_FILE",
    "KAFKA_SSL_CERT_FILE",
    "KAFKA_SSL_KEY_FILE",
    "KAFKA_SSL_KEY_PASSWORD",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("pki"), "test-ca")


def tls_environment(pki: CertificateAuthority, tmp_path: Path, *, key_password: str | None = None) -> dict[str, str]:
    client = pki.issue(tmp_path, "client", "sellthrough-client", key_password=key_password)
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_FILE": str(pki.cert_file),
        "KAFKA_SSL_CERT_FILE": str(client.cert_file),
        "KAFKA_SSL_KEY_FILE": str(client.key_file),
    }
    if key_password is not None:
        env["KAFKA_SSL_KEY_PASSWORD"] = key_password
    return env


def test_plaintext_by_default() -> None:
    settings = KafkaSecuritySettings()
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert librdkafka_security(settings) == {"security.protocol": "plaintext"}


def test_empty_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """As compose and Helm pass a setting nobody gave: `KAFKA_SSL_CA_FILE: ""`."""
    for name in VARIABLES:
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    assert aiokafka_security(KafkaSecuritySettings()) == {"security_protocol": "PLAINTEXT"}
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"):
        KafkaSecuritySettings()


def test_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, pki: CertificateAuthority, tmp_path: Path
) -> None:
    for name, value in tls_environment(pki, tmp_path, key_password="pw").items():
        monkeypatch.setenv(name, value)
    for settings in (KafkaSecuritySettings(), ServiceSettings()):
        assert settings.kafka_security_protocol == "SSL"
        assert settings.kafka_ssl_ca_file == pki.cert_file
        assert settings.kafka_ssl_key_password is not None
        assert settings.kafka_ssl_key_password.get_secret_value() == "pw"
        assert "pw" not in repr(settings), "secrets stay out of logs and tracebacks"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        (
            {"KAFKA_SSL_CA_FILE": "{ca}"},
            "KAFKA_SSL_CA_FILE set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SSL_CA_FILE": "{ca}",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "does not use TLS",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "{ca}"}, "go together"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PASSWORD": "x"}, "without KAFKA_SSL_KEY_FILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nowhere/ca.pem"}, "is not a readable file"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "",
            },
            "needs KAFKA_SASL_PASSWORD",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "KAFKA_SASL_MECHANISM",
        ),
        ({"KAFKA_SASL_USERNAME": "u"}, "does not use SASL"),
    ],
)
def test_a_combination_that_cannot_work_stops_the_service_at_start(
    monkeypatch: pytest.MonkeyPatch, pki: CertificateAuthority, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(ca=pki.cert_file))
    for settings_class in (KafkaSecuritySettings, ServiceSettings):
        with pytest.raises(ValidationError, match=message):
            settings_class()


async def test_tls_builds_a_verifying_context_for_every_aiokafka_client(
    monkeypatch: pytest.MonkeyPatch, pki: CertificateAuthority, tmp_path: Path
) -> None:
    for name, value in tls_environment(pki, tmp_path, key_password="key-secret").items():
        monkeypatch.setenv(name, value)
    kwargs = client_security()
    assert kwargs["security_protocol"] == "SSL"
    context: ssl.SSLContext = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.get_ca_certs(), "the CA file is loaded"
    # Built from the environment when no settings are passed: scripts and tools are secured like the services.
    clients = [
        make_producer("127.0.0.1:9", "p"),
        make_consumer("127.0.0.1:9", "g", "c"),
        make_offsets_reader("127.0.0.1:9", "o"),
    ]
    admin = make_admin("127.0.0.1:9", "a")
    for client in (*clients, admin):
        # The connection settings live on each client's AIOKafkaClient (`client` on a producer, else `_client`).
        connection = getattr(client, "client", None) or client._client
        assert connection._security_protocol == "SSL"
        assert isinstance(connection._ssl_context, ssl.SSLContext)
    for client in clients:
        await client.stop()
    await admin.close()


def test_a_wrong_key_password_fails_when_the_context_is_built(
    monkeypatch: pytest.MonkeyPatch, pki: CertificateAuthority, tmp_path: Path
) -> None:
    environment = tls_environment(pki, tmp_path, key_password="right")
    environment["KAFKA_SSL_KEY_PASSWORD"] = "wrong"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ssl.SSLError):
        client_security()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_sasl_configurations_are_accepted_by_both_libraries(
    pki: CertificateAuthority, mechanism: str, protocol: str
) -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="svc-order-capture",
        kafka_sasl_password="s3cret",
        kafka_ssl_ca_file=pki.cert_file if protocol == "SASL_SSL" else None,
    )
    kwargs = aiokafka_security(settings)
    assert kwargs["sasl_mechanism"] == mechanism
    assert kwargs["sasl_plain_username"] == "svc-order-capture"
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert ("ssl_context" in kwargs) == (protocol == "SASL_SSL")
    # aiokafka checks the protocol, mechanism and credentials when a client is built.
    producer = make_producer("127.0.0.1:9", "p", security=settings)
    await producer.stop()

    config = librdkafka_security(settings)
    assert config["security.protocol"] == protocol.lower()
    assert config["sasl.mechanism"] == mechanism
    assert config["sasl.username"] == "svc-order-capture"
    assert config["sasl.password"] == "s3cret"
    if protocol == "SASL_SSL":
        assert config["ssl.ca.location"] == str(pki.cert_file)
    # librdkafka rejects an unknown property, value or mechanism when the client is created.
    Producer({"bootstrap.servers": "127.0.0.1:9", **config})


def test_librdkafka_rejects_what_it_does_not_know() -> None:
    """The check above can fail: librdkafka does validate at construction."""
    with pytest.raises(KafkaException):
        Producer({"bootstrap.servers": "127.0.0.1:9", "security.protocol": "sasl_ssl", "sasl.mechanism": "NOPE"})


def test_tls_configuration_for_librdkafka(pki: CertificateAuthority, tmp_path: Path) -> None:
    client = pki.issue(tmp_path, "client", "sellthrough-client", key_password="pw")
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=pki.cert_file,
        kafka_ssl_cert_file=client.cert_file,
        kafka_ssl_key_file=client.key_file,
        kafka_ssl_key_password="pw",
    )
    config = librdkafka_security(settings)
    assert config == {
        "security.protocol": "ssl",
        "ssl.ca.location": str(pki.cert_file),
        "ssl.certificate.location": str(client.cert_file),
        "ssl.key.location": str(client.key_file),
        "ssl.key.password": "pw",
        "ssl.endpoint.identification.algorithm": "https",
    }
    Producer({"bootstrap.servers": "127.0.0.1:9", **config})  # loads the files: a wrong password would raise
