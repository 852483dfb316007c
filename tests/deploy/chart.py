"""helm/sellthrough run through the real, pinned helm (tests/support/helm_binary.py), and lookups in what it
renders. Each distinct values set is rendered once per session: helm is deterministic for given inputs."""

import copy
import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.code_facts import ROOT

CHART = ROOT / "helm" / "sellthrough"
# The chart refuses to render without a database, its secrets and Kafka: these stand in for real ones.
CI_VALUES = CHART / "ci" / "test-values.yaml"
# The README's production.yaml with every optional part switched on.
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
RELEASE = "rel"
NAMESPACE = "sellthrough"
KUBE_VERSION = "1.30.0"  # helm's own default would follow the helm release, not the clusters we support
KUBE_VERSIONS = ("1.25.0", KUBE_VERSION, "1.33.0")  # the oldest Chart.yaml's kubeVersion allows, to a current one
HELM_TIMEOUT_S = 60

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]
"""render(**overrides) -> manifests, with ci/test-values.yaml under the overrides; render(ci=False, ...)
without them (values.yaml only)."""


class RenderError(Exception):
    """helm refused to render; the message is its stderr."""


@dataclass
class Chart:
    helm: Path
    scratch: Path  # where override values files are written
    _rendered: dict[str, list[Manifest] | RenderError] = field(default_factory=dict)

    def _run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.helm), *arguments], capture_output=True, text=True, check=False, timeout=HELM_TIMEOUT_S
        )

    def _values_arguments(self, values_files: tuple[Path, ...], overrides: dict[str, Any]) -> list[str]:
        arguments = [argument for path in values_files for argument in ("-f", str(path))]
        if overrides:
            # helm merges the files itself, in order: maps merge, anything else replaces, null deletes.
            text = yaml.safe_dump(overrides)
            path = self.scratch / f"overrides-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
            path.write_text(text)
            arguments += ["-f", str(path)]
        return arguments

    def template(
        self, *values_files: Path, overrides: dict[str, Any] | None = None, kube_version: str = KUBE_VERSION
    ) -> list[Manifest]:
        """`helm template` of the chart with the files, then overrides, over values.yaml."""
        overrides = overrides or {}
        key = json.dumps([[str(path) for path in values_files], overrides, kube_version], sort_keys=True)
        if key not in self._rendered:
            arguments = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version]
            result = self._run(*arguments, *self._values_arguments(values_files, overrides))
            if result.returncode or result.stderr.strip():
                # A render that succeeds with warnings (e.g. a value of the wrong type dropped while merging)
                # counts as a failure: helm install would print them to an operator nobody reads.
                outcome: list[Manifest] | RenderError = RenderError(result.stderr)
            else:
                outcome = split_manifests(result.stdout)
            self._rendered[key] = outcome
        outcome = self._rendered[key]
        if isinstance(outcome, RenderError):
            raise RenderError(str(outcome))
        return copy.deepcopy(outcome)  # a test may change what it got; the next one gets helm's output

    def lint(
        self, *values_files: Path, chart: Path = CHART, kube_version: str = KUBE_VERSION
    ) -> subprocess.CompletedProcess[str]:
        """`helm lint --strict`: warnings fail too."""
        values = self._values_arguments(values_files, {})
        return self._run("lint", "--strict", str(chart), "--kube-version", kube_version, *values)


def split_manifests(text: str) -> list[Manifest]:
    documents = []
    for document in yaml.safe_load_all(text):
        if document is not None:
            assert isinstance(document, dict), f"not an object: {str(document)[:200]}"
            documents.append(document)
    return documents


def objects(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def component(manifests: list[Manifest], kind: str, service: str) -> Manifest:
    found = [
        m
        for m in objects(manifests, kind).values()
        if m["metadata"]["labels"].get("app.kubernetes.io/component") == service
    ]
    assert len(found) == 1, f"expected one {kind} for {service}, found {len(found)}"
    return found[0]


def jobs_by_component(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {job["metadata"]["labels"]["app.kubernetes.io/component"]: job for job in objects(manifests, "Job").values()}


def container_env(manifests: list[Manifest], container: dict[str, Any]) -> dict[str, Any]:
    """The container's variables: envFrom ConfigMaps resolved, then env (value or valueFrom). A variable only
    there to be put into another one's value as $(NAME), as Kubernetes does, is left out: the process reads the
    result, not it."""
    env: dict[str, Any] = {}
    config_maps = objects(manifests, "ConfigMap")
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    referenced = {
        name for value in env.values() if isinstance(value, str) for name in re.findall(r"\$\((\w+)\)", value)
    }
    return {name: value for name, value in env.items() if name not in referenced}


def secret_key_value(manifests: list[Manifest], container: dict[str, Any], name: str) -> str:
    """The value a secretKeyRef variable of `container` gets from the chart's Secret."""
    (reference,) = [v["valueFrom"]["secretKeyRef"] for v in container["env"] if v["name"] == name]
    return str(objects(manifests, "Secret")[reference["name"]]["stringData"][reference["key"]])
