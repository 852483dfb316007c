"""deploy/Dockerfile and the build context it is sent (Dockerfile.dockerignore)."""

import re

from tests.deploy.code_facts import ROOT
from tests.deploy.compose_file import DEPLOY


def dockerfile_instructions() -> list[tuple[str, str]]:
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        keyword, _, rest = text.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_builds_any_service_as_non_root() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    for index in stages:
        assert instructions[index][1].split()[0] == "python:3.11-slim"
    final = instructions[stages[-1] :]
    arguments = {rest.split("=")[0] for keyword, rest in instructions if keyword == "ARG"}
    assert "SERVICE" in arguments
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install -c constraints.txt ./contracts ./runtime ./services/${SERVICE}" in runs
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can check it"
    assert int(uid) != 0
    assert any(keyword == "EXPOSE" for keyword, _ in final)
    (healthcheck,) = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "SELLTHROUGH_HTTP_PORT" in healthcheck
    assert any(keyword == "CMD" for keyword, _ in final)
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "SELLTHROUGH_HTTP_HOST=0.0.0.0" in env
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            source = rest.split()[0].replace("${SERVICE}", "order-capture")
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def _ignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex on slash-separated paths relative to the context (Go
    filepath.Match plus `**`); a match of a directory also covers what is below it."""
    regex = ""
    parts = pattern.strip("/").split("/")
    for i, part in enumerate(parts):
        if part == "**":
            regex += "(?:[^/]+/)*" if i < len(parts) - 1 else ".*"
            continue
        regex += "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        if i < len(parts) - 1:
            regex += "/"
    return re.compile(regex + "(?:/.*)?")


def docker_ignored(relative: str) -> bool:
    ignored = False
    for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        if _ignore_pattern(pattern.lstrip("!")).fullmatch(relative):
            ignored = not negated
    return ignored


def test_docker_context_sends_what_the_image_installs() -> None:
    # BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile; a deploy/.dockerignore would be ignored.
    assert not (DEPLOY / ".dockerignore").exists()
    needed = [ROOT / "constraints.txt"]
    for project in (ROOT / "contracts", ROOT / "runtime", *(ROOT / "services").iterdir()):
        for path in project.rglob("*"):
            parts = path.relative_to(project).parts
            leftover = parts[0] in {"build", "dist", "schemas"} or path.suffix == ".pyc"  # setuptools, caches
            if (
                path.is_file()
                and not leftover
                and not any(p.endswith(".egg-info") or p == "__pycache__" for p in parts)
            ):
                needed.append(path)
    assert any(path.suffix == ".sql" for path in needed)
    for path in needed:
        assert not docker_ignored(path.relative_to(ROOT).as_posix()), f"{path.relative_to(ROOT)} is not sent"
    for unwanted in (
        ".venv/bin/python",
        ".git/HEAD",
        ".dev/tokens.env",
        ".tools/helm-v3.17.3/helm",
        "tests/conftest.py",
        "runtime/sellthrough_runtime.egg-info/PKG-INFO",
        "runtime/sellthrough_runtime/__pycache__/x.pyc",
        "runtime/build/lib/sellthrough_runtime/app.py",
        "services/query-api/build/lib/query_api/main.py",
    ):
        assert docker_ignored(unwanted), f"{unwanted} would be sent to the builder"
