"""docker-compose.yml and the Dockerfile describe a runnable deployment."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gql.server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_two_api_replicas_and_a_trainer_on_postgres_and_redis():
    services = compose()["services"]
    assert "pgvector" in services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")
    replicas = [services["api-1"], services["api-2"]]
    assert {r["ports"][0].split(":")[0] for r in replicas} == {"8000", "8001"}
    for api in [*replicas, services["trainer"]]:
        env = api["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert api["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"}}
        # every RECOGRAPH_* variable the file sets is a real setting
        known = {f"RECOGRAPH_{n.upper()}" for n in Settings.model_fields}
        assert {k for k in env if k.startswith("RECOGRAPH_")} <= known
    assert services["trainer"]["command"][:2] == ["recograph", "trainer"]
    for name in ("postgres", "redis", "api-1", "api-2"):
        assert "healthcheck" in services[name]


def test_dockerfile_runs_as_non_root_with_offline_graphiql():
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER recograph" in text
    assert "gql.server.graphiql" in text
    for folder in ("gql", "engines", "plugins", "storage"):
        assert f"COPY {folder} {folder}" in text


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose client not installed",
)
def test_docker_compose_config_validates():
    subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, check=True)
