"""docker-compose.yml and the Dockerfile describe a runnable deployment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
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


def test_the_files_the_dockerfile_copies_build_the_whole_service(tmp_path):
    """What the image's build stage sees (its COPY lines, no more) builds a wheel with every
    package and the schema, and its GraphiQL step names a module that exists."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    build = tmp_path / "src"
    build.mkdir()
    for line in lines:
        if line.startswith("FROM") and build.exists() and any(build.iterdir()):
            break  # the build stage ends where the final stage begins
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                path = ROOT / source
                if path.is_dir():
                    shutil.copytree(path, build / source, ignore=shutil.ignore_patterns(
                        "__pycache__", "graphiql"))
                else:
                    shutil.copy(path, build / source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(build)],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("recograph-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("gql", "engines", "plugins", "storage"):
        assert f"{package}/__init__.py" in names, package
    assert "gql/schema.graphql" in names
    assert "storage/migrations/env.py" in names
    module = next(w for w in " ".join(lines).split() if w.startswith("gql.server."))
    assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module
    assert "USER recograph" in lines


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose client not installed",
)
def test_docker_compose_config_validates():
    subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, check=True)
