"""deploy/prometheus and deploy/grafana: every series they name is one the runtime exports, with its labels."""

import json
import re
from functools import cache

import yaml
from prometheus_client.metrics import MetricWrapperBase

from sellthrough_runtime import metrics as runtime_metrics
from tests.deploy.code_facts import services
from tests.deploy.compose_file import DEPLOY, compose, compose_env

TARGET_LABELS = {"job", "instance", "component"}


@cache
def exported_metrics() -> dict[str, frozenset[str]]:
    """Every series name the runtime exports -> its label names."""
    exported: dict[str, frozenset[str]] = {}
    for metric in vars(runtime_metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        labels = frozenset(metric._labelnames)
        (family,) = metric.describe()
        suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"],
                    "summary": ["_sum", "_count"], "info": ["_info"]}  # fmt: skip
        assert family.type in suffixes, f"{family.name}: teach this test the series of a {family.type}"
        for suffix in suffixes[family.type]:
            exported[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    assert "sellthrough_consumer_lag" in exported
    assert "sellthrough_dead_letters_total" in exported
    return exported


def check_promql(expr: str, where: str) -> set[str]:
    """Every metric `expr` names is exported, and every label it groups or matches by exists on one of them.
    Returns the metric names."""
    exported = exported_metrics()
    expr = expr.replace("$__rate_interval", "5m")
    names = set(re.findall(r"\bsellthrough_[a-z0-9_]+\b", expr))
    unknown = names - exported.keys()
    assert not unknown, f"{where}: {sorted(unknown)} are not exported by sellthrough_runtime.metrics"
    known_labels = set(TARGET_LABELS)
    for name in names:
        known_labels |= exported[name]
    used = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    assert not used - known_labels, f"{where}: labels {sorted(used - known_labels)} exist on none of {sorted(names)}"
    return names | ({"up"} if re.search(r"\bup\b", expr) else set())


def test_prometheus_scrapes_every_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "sellthrough"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    expected = {f"{name}:{compose_env(name)['SELLTHROUGH_HTTP_PORT']}" for name in services()}
    assert targets == expected
    mounted = {str(v).split(":")[1]: str(v).split(":")[0] for v in compose()["services"]["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert rule_file in mounted
        assert (DEPLOY / mounted[rule_file]).is_file()


def test_alert_rules_cover_lag_dead_letters_outbox_and_down_services() -> None:
    rules = [
        rule
        for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    covered: set[str] = set()
    for rule in rules:
        assert rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        names = check_promql(rule["expr"], rule["alert"])
        covered |= names
        annotations = " ".join(rule["annotations"].values())
        for label in re.findall(r"\$labels\.([a-zA-Z_]+)", annotations):
            assert label in TARGET_LABELS or any(label in exported_metrics().get(n, ()) for n in names), label
    assert {"sellthrough_consumer_lag", "sellthrough_dead_letters_total", "sellthrough_outbox_backlog", "up"} <= covered
    (down,) = [rule for rule in rules if re.search(r"\bup\b", rule["expr"])]
    assert 'job="sellthrough"' in down["expr"], "the job label both compose and the ServiceMonitor give"


def test_grafana_provisions_prometheus_and_a_dashboard_of_known_metrics() -> None:
    grafana = DEPLOY / "grafana"
    (datasource,) = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((grafana / "provisioning/dashboards/sellthrough.yml").read_text())["providers"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in compose()["services"]["grafana"]["volumes"]}
    assert (DEPLOY / mounts[provider["options"]["path"]] / "sellthrough.json").is_file()
    dashboard = json.loads((grafana / "dashboards" / "sellthrough.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            used |= check_promql(target["expr"], f"panel {panel['title']!r}")
    wanted = {
        "sellthrough_events_ingested_total",  # ingest rate
        "sellthrough_consumer_lag",
        "sellthrough_outbox_backlog",
        "sellthrough_dead_letters_total",
        "sellthrough_http_requests_total",  # errors
        "sellthrough_http_request_seconds_bucket",  # latency
    }
    assert wanted <= used, f"the dashboard does not show {sorted(wanted - used)}"
