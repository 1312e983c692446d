"""Self-hosted GraphiQL: pinned npm assets, fetched at install/build time, and the page.

Strawberry's built-in GraphiQL page pulls React and GraphiQL from a CDN. This module instead
downloads pinned tarballs from the npm registry (stdlib only, no node/npm needed), checks each
against its registry ``dist.integrity`` (SRI sha512), and extracts only the browser builds we
serve. Run it once during setup::

    python -m gql.server.graphiql

It deliberately imports neither strawberry nor aiohttp, so it can run before the app is
importable.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import html
import http.client
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

ASSETS_DIR_ENV = "RECOGRAPH_GRAPHIQL_ASSETS_DIR"
REGISTRY_ENV = "NPM_CONFIG_REGISTRY"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
DOWNLOAD_TIMEOUT = 60.0
MAX_TARBALL_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm tarball and the files we take from it.

    ``files`` maps a path inside the package (without the tarball's top-level ``package/``
    directory) to the flat local filename it is written to.
    """

    name: str
    version: str
    integrity: str
    files: Mapping[str, str]

    def tarball_url(self, registry: str) -> str:
        """Registry URL of this package's tarball (scoped names keep their ``@scope/``)."""
        basename = self.name.rsplit("/", 1)[-1]
        return f"{registry.rstrip('/')}/{self.name}/-/{basename}-{self.version}.tgz"


# GraphiQL 4+/React 19 ship no UMD/global builds; these are the last versions that do.
# graphiql 3.9.0's UMD bundle expects the globals React and ReactDOM, and bundles its other
# dependencies (graphql, codemirror, @graphiql/toolkit, graphql-ws) and its fonts (data: URIs).
PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        name="react",
        version="18.3.1",
        integrity=(
            "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rv"
            "e+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
        ),
        files={
            "umd/react.production.min.js": "react.production.min.js",
            "LICENSE": "react.LICENSE.txt",
        },
    ),
    NpmPackage(
        name="react-dom",
        version="18.3.1",
        integrity=(
            "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BL"
            "kLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
        ),
        files={
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "react-dom.LICENSE.txt",
        },
    ),
    NpmPackage(
        name="graphiql",
        version="3.9.0",
        integrity=(
            "sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB"
            "9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
        ),
        files={
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "graphiql.LICENSE.txt",
        },
    ),
    # Not used by the IDE (graphiql bundles its own copy): the browser build of the standard
    # graphql-transport-ws client, for the example page (`examples/web`) and its test.
    NpmPackage(
        name="graphql-ws",
        version="6.4.2",
        integrity=(
            "sha512-wxhPhhOGJo8PbGDkBYVE76sZLDrS+GkyrR4bZECSLVbo0pZZNKs0HtBh2Ip/uaUuiVUxwO9ss"
            "I9R92buQfNSqQ=="
        ),
        files={
            "umd/graphql-ws.min.js": "graphql-ws.min.js",
            "LICENSE.md": "graphql-ws.LICENSE.txt",
        },
    ),
)

# Load order matters: React, then ReactDOM, then GraphiQL (which reads both globals).
SCRIPT_FILES: tuple[str, ...] = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
)
STYLESHEET_FILES: tuple[str, ...] = ("graphiql.min.css",)


class AssetFetchError(RuntimeError):
    """The GraphiQL assets could not be downloaded, verified or written."""


class IntegrityError(AssetFetchError):
    """Downloaded bytes do not match the pinned Subresource Integrity value."""


def asset_files() -> list[str]:
    """Every local filename the manifest produces."""
    return [local for pkg in PACKAGES for local in pkg.files.values()]


def assets_dir() -> Path:
    """Asset directory: ``$RECOGRAPH_GRAPHIQL_ASSETS_DIR``, else ``gql/server/static/graphiql``."""
    override = os.environ.get(ASSETS_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parent / "static" / "graphiql"


def registry_url() -> str:
    """npm registry base URL: ``$NPM_CONFIG_REGISTRY`` or the public registry."""
    return (os.environ.get(REGISTRY_ENV, "").strip() or DEFAULT_REGISTRY).rstrip("/")


_SRI_ALGORITHMS = ("sha512", "sha384", "sha256")  # strongest first


def verify_integrity(data: bytes, integrity: str, *, what: str = "data") -> None:
    """Raise ``IntegrityError`` unless ``data`` matches the SRI string ``integrity``.

    Of the hashes listed (space-separated ``alg-base64``), the strongest supported one is used.
    """
    expected: dict[str, bytes] = {}
    for token in integrity.split():
        alg, sep, b64 = token.partition("-")
        if not sep or alg not in _SRI_ALGORITHMS:
            continue
        try:
            expected.setdefault(alg, base64.b64decode(b64.split("?", 1)[0], validate=True))
        except (binascii.Error, ValueError):
            raise IntegrityError(f"malformed integrity value for {what}: {token!r}") from None
    strongest = next((a for a in _SRI_ALGORITHMS if a in expected), None)
    if strongest is None:
        raise IntegrityError(f"no supported (sha256/384/512) hash in integrity for {what}")
    actual = hashlib.new(strongest, data).digest()
    if not hmac.compare_digest(actual, expected[strongest]):
        got = f"{strongest}-{base64.b64encode(actual).decode()}"
        raise IntegrityError(f"integrity mismatch for {what}: expected {integrity}, got {got}")


def _download(url: str) -> bytes:
    """GET ``url`` with a size cap, turning network failures into ``AssetFetchError``."""
    request = urllib.request.Request(
        url, headers={"User-Agent": "recograph-graphiql-assets", "Accept": "*/*"}
    )
    hint = f"check network/proxy access to the npm registry, or set {REGISTRY_ENV} to a mirror"
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            data = response.read(MAX_TARBALL_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise AssetFetchError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise AssetFetchError(f"download failed for {url}: {reason} ({hint})") from exc
    if len(data) > MAX_TARBALL_BYTES:
        raise AssetFetchError(f"download too large (> {MAX_TARBALL_BYTES} bytes): {url}")
    return data


def extract_files(tarball: bytes, package: NpmPackage) -> dict[str, bytes]:
    """Return ``{local filename: content}`` for ``package.files`` found in the tarball.

    Member names are matched after dropping their top-level directory (usually ``package/``)
    and are never used as output paths; only regular files are accepted.
    """
    wanted = dict(package.files)
    found: dict[str, bytes] = {}
    label = f"{package.name}@{package.version}"
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for member in archive:
                _, _, inner = member.name.removeprefix("./").partition("/")
                if inner not in wanted or wanted[inner] in found:
                    continue
                if not member.isfile():
                    raise AssetFetchError(f"{label}: {member.name} is not a regular file")
                stream = archive.extractfile(member)
                if stream is None:  # pragma: no cover - isfile() members always have data
                    raise AssetFetchError(f"{label}: cannot read {member.name}")
                found[wanted[inner]] = stream.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise AssetFetchError(f"{label}: unreadable tarball: {exc}") from exc
    missing = sorted(path for path, local in wanted.items() if local not in found)
    if missing:
        raise AssetFetchError(f"{label}: tarball lacks {', '.join(missing)}")
    return found


def _expected_manifest() -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "packages": {
            pkg.name: {
                "version": pkg.version,
                "integrity": pkg.integrity,
                "files": sorted(pkg.files.values()),
            }
            for pkg in PACKAGES
        },
    }


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def assets_present() -> bool:
    """True if every pinned asset is on disk and ``manifest.json`` records the pinned versions."""
    directory = assets_dir()
    manifest = _read_manifest(directory)
    if manifest is None or manifest.get("packages") != _expected_manifest()["packages"]:
        return False
    return all(
        (directory / name).is_file() and (directory / name).stat().st_size > 0
        for name in asset_files()
    )


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_assets(force: bool = False) -> Path:
    """Download, verify and extract the pinned assets into ``assets_dir()``; return that dir.

    Idempotent: does nothing when ``assets_present()`` unless ``force``. Everything is
    downloaded and verified before anything is written; ``manifest.json`` is written last.
    Raises ``AssetFetchError`` (or its subclass ``IntegrityError``) on failure.
    """
    directory = assets_dir()
    if not force and assets_present():
        return directory
    registry = registry_url()
    contents: dict[str, bytes] = {}
    for pkg in PACKAGES:
        url = pkg.tarball_url(registry)
        tarball = _download(url)
        verify_integrity(tarball, pkg.integrity, what=url)
        contents.update(extract_files(tarball, pkg))

    try:
        directory.mkdir(parents=True, exist_ok=True)
        old = _read_manifest(directory)
        (directory / MANIFEST_NAME).unlink(missing_ok=True)
        for name, data in contents.items():
            _write_atomic(directory / name, data)
        if old and isinstance(old.get("packages"), dict):  # drop files of older pins
            for entry in old["packages"].values():
                files = entry.get("files", []) if isinstance(entry, dict) else []
                for name in files:
                    if isinstance(name, str) and name not in contents and "/" not in name:
                        (directory / name).unlink(missing_ok=True)
        manifest = json.dumps(_expected_manifest(), indent=2, sort_keys=True) + "\n"
        _write_atomic(directory / MANIFEST_NAME, manifest.encode("utf-8"))
    except OSError as exc:
        raise AssetFetchError(
            f"cannot write GraphiQL assets to {directory}: {exc} "
            f"(set {ASSETS_DIR_ENV} to a writable directory)"
        ) from exc
    return directory


_PAGE = Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Recograph GraphiQL</title>
<link rel="icon" href="data:,">
$stylesheets
<style>
  html, body { height: 100%; margin: 0; overflow: hidden; }
  #graphiql { height: 100vh; display: flex; }
</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL&hellip;</div>
$scripts
<script>
  (function () {
    var url = new URL($graphql_path, window.location.href);
    url.hash = "";
    var httpUrl = url.toString();
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var fetcher = GraphiQL.createFetcher({ url: httpUrl, subscriptionUrl: url.toString() });
    var root = ReactDOM.createRoot(document.getElementById("graphiql"));
    root.render(React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      inputValueDeprecation: true
    }));
  })();
</script>
</body>
</html>
"""
)


def _js_string(value: str) -> str:
    """A JS string literal that is also safe inside an HTML ``<script>`` element."""
    literal = json.dumps(value)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        literal = literal.replace(char, escaped)
    return literal.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _check_local_path(value: str, what: str) -> str:
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        raise ValueError(f"{what} must be a same-origin absolute path like '/x', got {value!r}")
    return value


def render_graphiql_html(
    graphql_path: str = "/graphql", static_prefix: str = "/graphiql-static"
) -> str:
    """The GraphiQL page, loading only ``<static_prefix>/<asset>`` from this origin.

    Queries and mutations go by HTTP POST to ``graphql_path``; subscriptions use the
    ``graphql-transport-ws`` protocol (the ``graphql-ws`` client bundled in graphiql 3.9's UMD
    build) on the same path via ``ws:``/``wss:``. Both arguments must be same-origin paths.
    """
    graphql_path = _check_local_path(graphql_path, "graphql_path")
    prefix = _check_local_path(static_prefix, "static_prefix").rstrip("/")

    def href(name: str) -> str:
        return html.escape(f"{prefix}/{name}", quote=True)

    return _PAGE.substitute(
        stylesheets="\n".join(
            f'<link rel="stylesheet" href="{href(name)}">' for name in STYLESHEET_FILES
        ),
        scripts="\n".join(f'<script src="{href(name)}"></script>' for name in SCRIPT_FILES),
        graphql_path=_js_string(graphql_path),
    )


def main(argv: list[str] | None = None) -> int:
    """CLI: fetch the GraphiQL assets and print where they are."""
    parser = argparse.ArgumentParser(
        prog="python -m gql.server.graphiql",
        description="Download the pinned GraphiQL/React browser assets from the npm registry.",
    )
    parser.add_argument("--force", action="store_true", help="re-download even if present")
    args = parser.parse_args(argv)
    already = not args.force and assets_present()
    try:
        directory = fetch_assets(force=args.force)
    except AssetFetchError as exc:
        print(f"error: GraphiQL assets not fetched: {exc}", file=sys.stderr)
        return 1
    versions = ", ".join(f"{pkg.name}@{pkg.version}" for pkg in PACKAGES)
    state = "already present" if already else "fetched"
    print(f"GraphiQL assets {state} in {directory} ({versions})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
