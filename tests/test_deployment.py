"""docker-compose.yml and the Dockerfile describe a runnable deployment."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gql.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_wires_api_to_postgres_with_pgvector_and_redis():
    services = compose()["services"]
    assert "pgvector" in services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")
    api = services["api"]
    env = api["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert api["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                 "redis": {"condition": "service_healthy"}}
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name]
    # every RECOGRAPH_* variable the file sets is a real setting
    known = {f"RECOGRAPH_{n.upper()}" for n in Settings.model_fields}
    assert {k for k in env if k.startswith("RECOGRAPH_")} <= known


def test_dockerfile_runs_as_non_root_with_offline_graphiql():
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER recograph" in text
    assert "gql.graphiql_assets" in text
    for folder in ("gql", "engines", "plugins", "storage"):
        assert f"COPY {folder} {folder}" in text


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose client not installed",
)
def test_docker_compose_config_validates():
    subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, check=True)
