"""Self-hosted GraphiQL assets: fetched from the npm registry, verified, rendered offline.

The fetch tests need registry.npmjs.org (or ``$NPM_CONFIG_REGISTRY``) and fail, rather than
skip, without it: fetching the assets is part of setup.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from gql.server import graphiql as ga

MIN_SIZES = {".js": 10_000, ".css": 10_000, ".txt": 500}


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _check_asset_files(directory: Path) -> None:
    for name in ga.asset_files():
        path = directory / name
        assert path.is_file(), f"missing asset {path}"
        assert path.stat().st_size >= MIN_SIZES[path.suffix], f"asset too small: {path}"
    assert b"React" in (directory / "react.production.min.js").read_bytes()
    assert b"ReactDOM" in (directory / "react-dom.production.min.js").read_bytes()
    assert b".GraphiQL=" in (directory / "graphiql.min.js").read_bytes()
    assert b".graphiql-container" in (directory / "graphiql.min.css").read_bytes()


def test_fetch_assets_default_dir() -> None:
    directory = ga.fetch_assets()
    assert directory == ga.assets_dir()
    assert ga.assets_present()
    _check_asset_files(directory)


def test_fetch_assets_fresh_dir_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "assets"
    monkeypatch.setenv(ga.ASSETS_DIR_ENV, str(target))
    assert ga.assets_dir() == target.resolve()
    assert not ga.assets_present()

    assert ga.fetch_assets() == target.resolve()
    _check_asset_files(target)
    manifest = json.loads((target / ga.MANIFEST_NAME).read_text())
    assert {name: entry["version"] for name, entry in manifest["packages"].items()} == {
        pkg.name: pkg.version for pkg in ga.PACKAGES
    }
    assert sorted(p.name for p in target.iterdir()) == sorted([*ga.asset_files(), ga.MANIFEST_NAME])

    def no_download(url: str) -> bytes:
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(ga, "_download", no_download)
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert ga.fetch_assets() == target.resolve()
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before

    (target / "graphiql.min.js").unlink()
    assert not ga.assets_present()


def test_rendered_html_is_offline_and_uses_local_assets() -> None:
    page = ga.render_graphiql_html()
    assert not re.search(r"(?:https?|wss?|ftp)://", page, re.IGNORECASE)
    assert "//" not in page  # not even protocol-relative //host references
    for name in (*ga.SCRIPT_FILES, *ga.STYLESHEET_FILES):
        assert f'"/graphiql-static/{name}"' in page
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url == "data:," or url.startswith("/graphiql-static/"), url
    assert page.index("react.production") < page.index("react-dom.production")
    assert page.index("react-dom.production") < page.index("graphiql.min.js")
    assert 'new URL("/graphql"' in page
    assert "subscriptionUrl" in page


def test_rendered_html_escapes_arguments() -> None:
    page = ga.render_graphiql_html('/api/"gql"</script>', static_prefix='/st/"x"&y/')
    assert '</script>"' not in page and '"gql"<' not in page
    assert '"/api/\\"gql\\"\\u003c/script\\u003e"' in page
    assert 'src="/st/&quot;x&quot;&amp;y/graphiql.min.js"' in page


@pytest.mark.parametrize(
    "bad", ["https://cdn.example/graphql", "//cdn.example/graphql", "graphql", "/\\evil"]
)
def test_render_rejects_non_local_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        ga.render_graphiql_html(graphql_path=bad)
    with pytest.raises(ValueError):
        ga.render_graphiql_html(static_prefix=bad)


def test_verify_integrity_rejects_tampered_tarball() -> None:
    tarball = _tarball({"index.js": b"console.log(1)\n"})
    integrity = _sri(tarball)
    ga.verify_integrity(tarball, integrity)  # genuine bytes pass

    tampered = bytearray(tarball)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(ga.IntegrityError, match="integrity mismatch"):
        ga.verify_integrity(bytes(tampered), integrity)
    with pytest.raises(ga.IntegrityError):
        ga.verify_integrity(tarball + b"\0", integrity)
    with pytest.raises(ga.IntegrityError, match="no supported"):
        ga.verify_integrity(tarball, "sha1-" + base64.b64encode(b"x" * 20).decode())
    with pytest.raises(ga.IntegrityError, match="malformed"):
        ga.verify_integrity(tarball, "sha512-not*base64")


def test_pinned_integrities_are_well_formed_sha512() -> None:
    for pkg in ga.PACKAGES:
        alg, _, b64 = pkg.integrity.partition("-")
        assert alg == "sha512" and len(base64.b64decode(b64, validate=True)) == 64, pkg.name
        assert all("/" not in local for local in pkg.files.values()), pkg.name


def test_fetch_refuses_tampered_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ga.ASSETS_DIR_ENV, str(tmp_path / "assets"))
    evil = _tarball({path: b"alert('pwned')" for pkg in ga.PACKAGES for path in pkg.files})
    monkeypatch.setattr(ga, "_download", lambda url: evil)
    with pytest.raises(ga.IntegrityError):
        ga.fetch_assets(force=True)
    assert not (tmp_path / "assets").exists()


def test_extract_files_takes_only_listed_regular_files() -> None:
    pkg = ga.NpmPackage("demo", "1.0.0", "sha512-unused", {"dist/a.js": "a.js"})
    tarball = _tarball({"dist/a.js": b"A", "dist/b.js": b"B", "../../etc/x": b"X"})
    assert ga.extract_files(tarball, pkg) == {"a.js": b"A"}
    with pytest.raises(ga.AssetFetchError, match=r"lacks dist/a\.js"):
        ga.extract_files(_tarball({"dist/b.js": b"B"}), pkg)
    with pytest.raises(ga.AssetFetchError, match="unreadable tarball"):
        ga.extract_files(b"not a tarball", pkg)
