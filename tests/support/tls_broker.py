"""A Kafka endpoint that only speaks mutual TLS, for tests: the Tansu broker behind Debian's stunnel4.

Tansu 0.6.0 lists `--cert`/`--key` but its listener still speaks plaintext with them (an `openssl s_client`
handshake gets no ServerHello), and the two options cannot even be given together. So stunnel terminates TLS on
a port of its own, requires a client certificate signed by the test CA, and forwards to Tansu on loopback; Tansu
advertises the stunnel port, so every connection a client makes after bootstrap goes through TLS as well.
"""

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.processes import free_port, port_open, spawn, stop_pid, wait_until
from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from tests.support.tls import CertificateAuthority, Issued


@dataclass(frozen=True)
class TlsEndpoint:
    bootstrap_servers: str
    ca: CertificateAuthority
    client: Issued
    """A client certificate the endpoint accepts."""
    stunnel_log: Path

    def environment(self) -> dict[str, str]:
        """The variables that make a service (or any client built by sellthrough_runtime.kafka) use TLS here."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(self.ca.cert_file),
            "KAFKA_SSL_CERT_FILE": str(self.client.cert_file),
            "KAFKA_SSL_KEY_FILE": str(self.client.key_file),
        }

    def security(self) -> KafkaSecuritySettings:
        return KafkaSecuritySettings.model_validate(self.environment())


def stunnel_binary() -> str:
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise RuntimeError("stunnel is missing: install Debian's stunnel4 (.ci/run does, as root)")
    return found


@contextlib.contextmanager
def tls_broker(directory: Path) -> Iterator[TlsEndpoint]:
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create(directory, "kafka-test-ca")
    server = ca.issue(directory, "broker", "127.0.0.1")
    client = ca.issue(directory, "client", "sellthrough-test-client")
    tls_port = free_port()
    broker = EmbeddedBroker(free_port(), directory / "tansu.log", advertised_port=tls_port)
    config = directory / "stunnel.conf"
    config.write_text(
        "\n".join(
            [
                "foreground = yes",
                "pid =",
                "debug = info",
                "[kafka]",
                f"accept = 127.0.0.1:{tls_port}",
                f"connect = 127.0.0.1:{broker.port}",
                f"cert = {server.cert_file}",
                f"key = {server.key_file}",
                f"CAfile = {ca.cert_file}",
                # Mutual TLS: a client without a certificate from this CA is turned away in the handshake.
                "verifyChain = yes",
                "requireCert = yes",
                "",
            ]
        )
    )
    stunnel_log = directory / "stunnel.log"
    broker.start()
    stunnel = spawn([stunnel_binary(), str(config)], stunnel_log)
    try:
        wait_until(lambda: port_open(tls_port), 15, "stunnel", stunnel_log)
        yield TlsEndpoint(f"127.0.0.1:{tls_port}", ca, client, stunnel_log)
    finally:
        stop_pid(stunnel.pid)
        stunnel.wait(timeout=5)
        broker.stop()
