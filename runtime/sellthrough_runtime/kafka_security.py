"""How every Kafka client of this system authenticates and encrypts: TLS (a CA, optionally a client certificate)
and SASL (PLAIN or SCRAM), read from KAFKA_* environment variables.

The settings are validated as a whole when they are read, so a process with a half-configured wire (a client
certificate without its key, SASL without a password, a CA file under PLAINTEXT that would silently be ignored)
refuses to start with a message naming the variables, rather than failing on its first connection.
aiokafka (the services) and librdkafka (confluent-kafka, the independent record check) are configured from the
same object by `aiokafka_security` and `librdkafka_security`.
"""

from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


class KafkaSecuritySettings(BaseSettings):
    """KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_*, KAFKA_SASL_*. ServiceSettings includes these fields."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        validation_alias="KAFKA_SECURITY_PROTOCOL",
        description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS).",
    )
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        validation_alias="KAFKA_SSL_CA_FILE",
        description="PEM file of the CA(s) the broker's certificate must chain to; the system's CAs if unset.",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None,
        validation_alias="KAFKA_SSL_CERT_FILE",
        description="PEM client certificate, for brokers that require mutual TLS (with KAFKA_SSL_KEY_FILE).",
    )
    kafka_ssl_key_file: Path | None = Field(
        default=None, validation_alias="KAFKA_SSL_KEY_FILE", description="PEM private key of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, validation_alias="KAFKA_SSL_KEY_PASSWORD", description="Password of an encrypted key file."
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None,
        validation_alias="KAFKA_SASL_MECHANISM",
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with a SASL_* protocol.",
    )
    kafka_sasl_username: str | None = Field(default=None, validation_alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(default=None, validation_alias="KAFKA_SASL_PASSWORD")

    @field_validator(
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
        "kafka_ssl_key_password",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose and Helm pass `VAR: ""` for a setting not used; that must mean unset, not an empty file name.
        return None if value == "" else value

    @model_validator(mode="after")
    def _coherent(self) -> "KafkaSecuritySettings":
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("Kafka security settings: " + "; ".join(problems))
        return self

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in TLS_PROTOCOLS

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol in SASL_PROTOCOLS


def kafka_security_problems(s: KafkaSecuritySettings) -> list[str]:
    """Every reason the combination cannot work, in the variables' own names."""
    protocol = s.kafka_security_protocol
    problems: list[str] = []
    tls_files = {
        "KAFKA_SSL_CA_FILE": s.kafka_ssl_ca_file,
        "KAFKA_SSL_CERT_FILE": s.kafka_ssl_cert_file,
        "KAFKA_SSL_KEY_FILE": s.kafka_ssl_key_file,
    }
    if not s.kafka_uses_tls:
        # Ignoring them would leave an operator believing the wire is encrypted.
        given = [name for name, value in tls_files.items() if value is not None]
        given += ["KAFKA_SSL_KEY_PASSWORD"] if s.kafka_ssl_key_password is not None else []
        if given:
            problems.append(f"{', '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")
    else:
        if (s.kafka_ssl_cert_file is None) != (s.kafka_ssl_key_file is None):
            problems.append("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (a client certificate and its key)")
        if s.kafka_ssl_key_password is not None and s.kafka_ssl_key_file is None:
            problems.append("KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_KEY_FILE")
        for name, path in tls_files.items():
            if path is not None and not path.is_file():
                problems.append(f"{name}={path} is not a readable file")
    sasl = {
        "KAFKA_SASL_MECHANISM": s.kafka_sasl_mechanism,
        "KAFKA_SASL_USERNAME": s.kafka_sasl_username,
        "KAFKA_SASL_PASSWORD": s.kafka_sasl_password,
    }
    if s.kafka_uses_sasl:
        missing = [name for name, value in sasl.items() if not _given(value)]
        if missing:
            problems.append(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
    else:
        given = [name for name, value in sasl.items() if value is not None]
        if given:
            problems.append(f"{', '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL")
    return problems


def _given(value: str | SecretStr | None) -> bool:
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


def aiokafka_security(s: KafkaSecuritySettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    kwargs: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    if s.kafka_uses_tls:
        # Verifies the broker's certificate and host name (create_ssl_context's defaults).
        kwargs["ssl_context"] = create_ssl_context(
            cafile=s.kafka_ssl_ca_file,
            certfile=s.kafka_ssl_cert_file,
            keyfile=s.kafka_ssl_key_file,
            password=s.kafka_ssl_key_password.get_secret_value() if s.kafka_ssl_key_password else None,
        )
    if s.kafka_uses_sasl:
        assert s.kafka_sasl_password is not None  # checked by kafka_security_problems
        kwargs["sasl_mechanism"] = s.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = s.kafka_sasl_username
        kwargs["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value()
    return kwargs


def librdkafka_security(s: KafkaSecuritySettings) -> dict[str, str]:
    """The same settings as librdkafka configuration properties (confluent-kafka clients)."""
    config = {"security.protocol": s.kafka_security_protocol.lower()}
    if s.kafka_uses_tls:
        optional = {
            "ssl.ca.location": s.kafka_ssl_ca_file,
            "ssl.certificate.location": s.kafka_ssl_cert_file,
            "ssl.key.location": s.kafka_ssl_key_file,
        }
        config |= {key: str(value) for key, value in optional.items() if value is not None}
        if s.kafka_ssl_key_password is not None:
            config["ssl.key.password"] = s.kafka_ssl_key_password.get_secret_value()
        config["ssl.endpoint.identification.algorithm"] = "https"  # verify the host name, as aiokafka does
    if s.kafka_uses_sasl:
        assert s.kafka_sasl_mechanism is not None
        assert s.kafka_sasl_username is not None
        assert s.kafka_sasl_password is not None
        config["sasl.mechanism"] = s.kafka_sasl_mechanism
        config["sasl.username"] = s.kafka_sasl_username
        config["sasl.password"] = s.kafka_sasl_password.get_secret_value()
    return config
