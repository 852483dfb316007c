from pathlib import Path
from typing import Any

import pytest

from tests.deploy.chart import CI_VALUES, Chart, Manifest, Render
from tests.support.helm_binary import HELM_VERSION, HelmUnavailable, ensure_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm, downloaded on first use. Without it the chart tests fail rather than skip: a suite
    that passes without rendering the chart would say nothing about it."""
    try:
        return ensure_helm()
    except HelmUnavailable as error:
        reason = str(error)
    pytest.fail(f"helm {HELM_VERSION} is needed to test helm/sellthrough and could not be had: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def chart(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Chart:
    return Chart(helm, tmp_path_factory.mktemp("helm-values"))


@pytest.fixture
def render(chart: Chart) -> Render:
    def run(ci: bool = True, **overrides: Any) -> list[Manifest]:
        return chart.template(*([CI_VALUES] if ci else []), overrides=overrides)

    return run
