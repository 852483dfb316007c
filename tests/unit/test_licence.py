"""The licence a user and a contributor are told about is the one the code ships with."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in ROOT.glob("**/pyproject.toml") if p != ROOT / "pyproject.toml" and ".venv" not in p.parts)


def test_the_licence_file_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the whole licence, not a stub naming it


def test_packages_are_found() -> None:
    assert len(PACKAGES) >= 9  # contracts, runtime, devstack, four services, the ERP connector, the field client


@pytest.mark.parametrize("pyproject", PACKAGES, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_every_package_declares_the_licence(pyproject: Path) -> None:
    project = tomllib.loads(pyproject.read_text())["project"]
    assert project.get("license") == "Apache-2.0"


def test_readme_tells_contributors_the_licence_and_the_rules() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "## Contributing" in readme
    contributing = readme.split("## Contributing", 1)[1].split("\n## ", 1)[0]
    assert "](LICENSE)" in contributing
    for rule in ("make test", "make lint", "make schemas", "make bench"):
        assert rule in contributing, rule
