"""The shell that creates the topics, in compose's topic-init and the chart's topic Job, run for real: it turns
the Kafka security variables into the Java client properties kafka-topics.sh reads."""

import subprocess
from pathlib import Path

import pytest

from tests.deploy.chart import Render, jobs_by_component
from tests.deploy.compose_file import compose


def _security_preamble(script: str) -> str:
    """The part of a topic creator's script that writes the client properties (before its topic loop)."""
    preamble, found, _ = script.partition("for spec in $TOPICS")
    assert found, "the script loops over $TOPICS"
    return preamble


@pytest.mark.parametrize("where", ["compose", "helm"])
def test_topic_creators_turn_the_security_variables_into_java_client_properties(
    where: str, render: Render, tmp_path: Path
) -> None:
    if where == "compose":
        script = compose()["services"]["topic-init"]["command"][0].replace("$$", "$")
    else:
        job = jobs_by_component(render())["topics"]
        script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    preamble = _security_preamble(script).replace("/tmp/", f"{tmp_path}/")
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    key.write_text("KEY\n")
    cert.write_text("CERT\n")

    def properties(environment: dict[str, str]) -> dict[str, str]:
        subprocess.run(["sh", "-c", preamble], env=environment, check=True, timeout=10)
        lines = (tmp_path / "client.properties").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    assert properties({}) == {"security.protocol": "PLAINTEXT"}
    empty = {name: "" for name in ("KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SASL_MECHANISM")}
    assert properties({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", **empty}) == {"security.protocol": "PLAINTEXT"}
    secured = properties(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SSL_CA_FILE": "/etc/sellthrough/kafka-tls/ca.pem",
            "KAFKA_SSL_CERT_FILE": str(cert),
            "KAFKA_SSL_KEY_FILE": str(key),
            "KAFKA_SSL_KEY_PASSWORD": "key-secret",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "sellthrough",
            "KAFKA_SASL_PASSWORD": "s3cret",
        }
    )
    assert secured == {
        "security.protocol": "SASL_SSL",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": "/etc/sellthrough/kafka-tls/ca.pem",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": f"{tmp_path}/client-keystore.pem",
        "ssl.key.password": "key-secret",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required username="sellthrough" '
        'password="s3cret";',
    }
    assert (tmp_path / "client-keystore.pem").read_text() == "KEY\nCERT\n", "the Java PEM keystore: key, then chain"
    plain = properties({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
                        "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"})  # fmt: skip
    assert plain["sasl.jaas.config"].startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
