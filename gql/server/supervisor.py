"""``recograph serve``: a supervisor process, N API workers on one port, and a trainer.

The supervisor owns the database (it starts and stops the embedded PostgreSQL), applies
migrations once, then starts the workers (each an aiohttp server bound with
``SO_REUSEPORT`` to the same port, so the kernel spreads connections over them) and one
trainer process. API workers never train: ``modelTrain`` asks the trainer, and new models
reach every worker over pub/sub. A worker that dies is replaced; SIGTERM or SIGINT drains
the workers, stops the trainer, then the database. Children die with the supervisor
(``PR_SET_PDEATHSIG``), so a killed supervisor leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.context import SpawnProcess
from typing import Any

from gql.server.settings import Settings

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # not Linux: the supervisor's own handlers still stop its children
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_settings(values: dict[str, Any]) -> Settings:
    settings = Settings.model_validate(values)
    from gql.server.observability import configure_logging

    configure_logging(settings.log_level, settings.json_logs)
    return settings


def _share_cores(workers: int) -> None:
    """Give each API worker its share of the cores for BLAS: N workers each running an
    all-core thread pool would fight over the same cores on every matrix product."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, (os.cpu_count() or 1) // max(1, workers)))


def run_worker(values: dict[str, Any], host: str, port: int) -> None:
    """One API worker (in its own process)."""
    _die_with_parent()
    from aiohttp import web

    from gql.server.app import create_app

    settings = _child_settings(values)
    _share_cores(settings.worker_count())
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        reuse_port=True,
        print=None,
        shutdown_timeout=10,
    )


def run_trainer(values: dict[str, Any]) -> None:
    """The trainer (in its own process): requested trainings, start-up and periodic ones."""
    _die_with_parent()
    settings = _child_settings(values)
    asyncio.run(train_forever(settings))


async def train_forever(settings: Settings) -> None:
    from gql.server.database import store_for
    from gql.server.runtime import EngineRuntime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with store_for(settings) as store:
        runtime = EngineRuntime.build(store, settings)
        await runtime.start_training(settings)
        try:
            await stop.wait()
        finally:
            await runtime.stop()


class Supervisor:
    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        self.host, self.port, self.workers = host, port, workers
        self.context = multiprocessing.get_context("spawn")
        # children get the resolved settings explicitly; they neither migrate nor train
        self.values = settings.model_dump(mode="json") | {
            "run_migrations": False,
            "train_in_process": False,
        }
        self.trainer_values = settings.model_dump(mode="json") | {"run_migrations": False}
        self.children: dict[str, SpawnProcess] = {}
        self.stopping = False

    def _start(self, name: str) -> None:
        if name == "trainer":
            proc = self.context.Process(
                target=run_trainer, args=(self.trainer_values,), name="recograph-trainer"
            )
        else:
            proc = self.context.Process(
                target=run_worker,
                args=(self.values, self.host, self.port),
                name=f"recograph-{name}",
            )
        proc.start()
        self.children[name] = proc

    def run(self) -> int:
        """Start everything and supervise until SIGTERM/SIGINT; the exit status."""

        def stop(signum: int, frame: Any) -> None:
            self.stopping = True

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for n in range(self.workers):
                self._start(f"worker-{n + 1}")
            if self.values.get("trainer") == "auto":
                self._start("trainer")
            restarts: dict[str, float] = {}
            while not self.stopping:
                time.sleep(0.2)
                for name, proc in list(self.children.items()):
                    if proc.is_alive() or self.stopping:
                        continue
                    log.error("%s exited with %s; starting it again", name, proc.exitcode)
                    if time.monotonic() - restarts.get(name, 0.0) < 5:
                        time.sleep(5)  # a child that cannot start must not spin
                    restarts[name] = time.monotonic()
                    self._start(name)
            return self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _shutdown(self, grace: float = 30.0) -> int:
        for proc in self.children.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)  # workers drain, the trainer stops
        deadline = time.monotonic() + grace
        for proc in self.children.values():
            proc.join(max(0.1, deadline - time.monotonic()))
        status = 0
        for name, proc in self.children.items():
            if proc.is_alive():
                log.warning("%s did not stop in time; killing it", name)
                proc.kill()
                proc.join(5)
                status = 1
        return status
