"""The chart as helm sees it: `helm lint --strict` and `helm template` with its default values, the CI stand-in
values and production-like values, every rendered object well formed and valid for the Kubernetes API of each
supported version, and a clear refusal when a required value is missing."""

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    KUBE_VERSIONS,
    PRODUCTION_VALUES,
    RELEASE,
    Chart,
    Manifest,
    Render,
    RenderError,
    objects,
)
from tests.deploy.code_facts import contract_topic_specs, services

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
CUSTOM_RESOURCES = {"ServiceMonitor", "KafkaTopic"}  # CRDs: no schema in the Kubernetes API to check against
# Every optional part of the chart switched on over the CI values (Strimzi instead of the topic Job).
EVERYTHING_ON: dict[str, Any] = {
    "serviceMonitor": {"enabled": True},
    "kafka": {"strimzi": {"enabled": True}, "security": {"protocol": "SSL", "secretName": "k", "caKey": "ca"}},
    "tracing": {"exporter": "otlp"},
    "networkPolicy": {"apiFrom": [{"podSelector": {}}], "metricsFrom": [{"namespaceSelector": {}}]},
}
VALUES_SETS: dict[str, tuple[tuple[Path, ...], dict[str, Any]]] = {
    "ci": ((CI_VALUES,), {}),
    "production": ((PRODUCTION_VALUES,), {}),
    "everything-on": ((CI_VALUES,), EVERYTHING_ON),
}


@pytest.mark.parametrize("values", [(), (CI_VALUES,), (PRODUCTION_VALUES,)], ids=["default", "ci", "production"])
def test_helm_lint_passes_strictly(chart: Chart, values: tuple[Path, ...]) -> None:
    result = chart.lint(*values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_helm_lint_fails_a_broken_chart(chart: Chart, tmp_path: Path) -> None:
    """Control for the lint test: the same lint rejects a chart whose template does not parse."""
    broken = tmp_path / "broken"
    (broken / "templates").mkdir(parents=True)
    (broken / "Chart.yaml").write_text((CHART / "Chart.yaml").read_text())
    (broken / "templates" / "x.yaml").write_text("kind: ConfigMap\nname: {{ .Values.x \n")
    result = chart.lint(chart=broken)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_default_values_refuse_to_render_with_what_is_missing(chart: Chart) -> None:
    with pytest.raises(RenderError, match=r"is required \("):
        chart.template()


def test_production_values_switch_on_the_optional_parts(chart: Chart) -> None:
    """So the schema check below covers them: the operator's Secret, TLS and SASL to Kafka, tracing, pinned
    network peers, a ServiceMonitor, scheduling constraints and pull secrets."""
    manifests = chart.template(PRODUCTION_VALUES)
    assert not objects(manifests, "Secret"), "existingSecret: the chart creates none"
    assert objects(manifests, "ServiceMonitor")
    for deployment in objects(manifests, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert {"imagePullSecrets", "nodeSelector", "tolerations", "affinity"} <= pod.keys()
        assert "kafka-tls" in {volume["name"] for volume in pod["volumes"]}
        env = {variable["name"] for variable in pod["containers"][0]["env"]}
        assert {"KAFKA_SASL_PASSWORD", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE", "KAFKA_SSL_KEY_PASSWORD"} <= env
    for policy in objects(manifests, "NetworkPolicy").values():
        assert all(rule.get("to") for rule in policy["spec"]["egress"][1:]), "every egress but DNS is pinned"


def test_chart_values_list_the_contract_topics_and_what_each_service_consumes() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert {(t["name"], t["partitions"]) for t in values["topics"]} == contract_topic_specs()
    assert set(values["services"]) == set(services())
    for name, facts in services().items():
        assert set(values["services"][name]["consumes"]) == facts.consumes, f"{name}: consumes differs from the code"
        assert values["services"][name]["port"] == facts.default_port
    for key, value in values["config"].items():
        assert isinstance(value, str), f"config.{key}: give it as a string (numbers render as floats)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database": {"host": ""}}, r"database\.host is required"),
        ({"secret": {"adminDatabaseUrl": ""}}, r"secret\.adminDatabaseUrl is required"),
        ({"secret": {"dbPasswords": {"query-api": ""}}}, r"secret\.dbPasswords\.query-api is required"),
        ({"secret": {"dbPasswords": {"stock-ledger": None}}}, r"secret\.dbPasswords\.stock-ledger is required"),
        ({"kafka": {"bootstrapServers": ""}}, r"kafka\.bootstrapServers is required"),
        ({"kafka": {"security": {"saslPasswordKey": "password"}}}, r"kafka\.security\.secretName is required"),
    ],
)
def test_chart_refuses_to_render_without_a_database_its_secrets_or_kafka(
    render: Render, overrides: dict[str, Any], message: str
) -> None:
    render()  # control: the CI values render
    with pytest.raises(RenderError, match=message):
        render(**overrides)


def test_a_render_with_warnings_counts_as_refused(render: Render) -> None:
    """helm renders a map where the chart has a string with only a warning (and the setting becomes "map[...]");
    the tests treat any warning as a failure, so the values sets above render cleanly."""
    with pytest.raises(RenderError, match=r"warning: destination for sellthrough\.config\.SELLTHROUGH_LOG_LEVEL"):
        render(config={"SELLTHROUGH_LOG_LEVEL": {"level": "INFO"}})


def test_every_rendered_object_is_well_formed(render: Render) -> None:
    manifests = render(serviceMonitor={"enabled": True})
    seen = set()
    for manifest in manifests:
        kind, metadata = manifest["kind"], manifest["metadata"]
        assert manifest["apiVersion"]
        assert kind
        key = (kind, metadata["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)
        name_pattern, name_length = (DNS_LABEL, 63) if kind in {"Service", "Deployment"} else (DNS_SUBDOMAIN, 253)
        assert name_pattern.fullmatch(metadata["name"]), key
        assert len(metadata["name"]) <= name_length, key
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "sellthrough"
        for label, value in labels.items():
            assert isinstance(value, str), (key, label)
            assert len(value) <= 63, (key, label)
    kinds = {kind for kind, _ in seen}
    assert {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor", "Job"} <= kinds
    assert {"NetworkPolicy", "PodDisruptionBudget"} <= kinds


def _built_in(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] not in CUSTOM_RESOURCES]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values_set", VALUES_SETS)
def test_rendered_objects_validate_against_the_kubernetes_api_schema(
    chart: Chart, values_set: str, kube_version: str
) -> None:
    """Every built-in object helm renders for this values set and Kubernetes version (Chart.yaml's kubeVersion
    is checked by helm itself) is valid for that version's API, unknown fields included."""
    files, overrides = VALUES_SETS[values_set]
    built_in = _built_in(chart.template(*files, overrides=overrides, kube_version=kube_version))
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "NetworkPolicy"} <= {
        m["kind"] for m in built_in
    }
    assert {"PodDisruptionBudget", "Job"} <= {m["kind"] for m in built_in}
    for manifest in built_in:
        kubernetes_validate.validate(manifest, kube_version, strict=True)


def test_every_kind_the_chart_can_render_is_schema_checked(chart: Chart) -> None:
    """The values sets above between them render every kind the templates can produce."""
    rendered: set[str] = set()
    for files, overrides in VALUES_SETS.values():
        rendered |= {m["kind"] for m in chart.template(*files, overrides=overrides)}
    templated = set()
    for template in (CHART / "templates").glob("*.yaml"):
        templated |= set(re.findall(r"^kind: (\w+)", template.read_text(), re.MULTILINE))
    assert templated, "no kind found in the templates"
    assert templated <= rendered, f"never rendered: {sorted(templated - rendered)}"


def test_the_chart_does_not_render_below_its_minimum_kubernetes(chart: Chart) -> None:
    with pytest.raises(RenderError, match="kubeVersion"):
        chart.template(CI_VALUES, kube_version="1.24.0")


def test_the_schema_check_rejects_an_invalid_object() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
