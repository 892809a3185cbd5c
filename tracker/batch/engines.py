"""Where a batch's inputs run: a local process pool or Ray. Both give each worker one
:class:`~tracker.batch.worker.BatchWorker` (models loaded once per worker) and the same interface.

* :class:`LocalEngine`: ``workers`` processes (``spawn``; a :class:`~concurrent.futures.ProcessPoolExecutor`).
  Ctrl-C from the terminal reaches every process of the group: the workers ignore SIGINT and let the
  main process stop them through a shared event, after their current frame. SIGTERM sent to a
  worker stops the whole batch the same way. A worker that dies (a crash in a native decoder) fails
  the inputs that were running; a new pool takes the next inputs.
* :class:`RayEngine`: ``workers`` Ray actors (``pip install 'handtrack[ray]'``; Ray is imported only
  here). ``ray.init()`` starts a local Ray instance, or joins the cluster at ``address`` (or
  ``RAY_ADDRESS``, as under ``ray job submit``); each actor asks for one CPU, and ``gpus_per_worker``
  GPUs when given (torch models then run on the actor's GPU with ``--device auto``). The actors are
  threaded (two calls at once) so that :meth:`RayEngine.stop` and the progress poll reach them while
  an input runs. Inputs and exports are paths: every node must see them at the same path (a shared
  file system), as the README's scale plan says.

Each engine hands out :class:`concurrent.futures.Future` objects (Ray's ``ObjectRef.future()``), so
the scheduler (:func:`tracker.batch.runner.run_batch`) is the same for both.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Protocol

from tracker.batch.worker import BatchWorker, Job, Outcome
from tracker.core.errors import ConfigError

if TYPE_CHECKING:
    from tracker.config import TrackerConfig

__all__ = ["Engine", "LocalEngine", "RayEngine", "WorkerLost", "ENGINES", "make_engine", "local_workers"]

log = logging.getLogger(__name__)

#: The ``--engine`` choices.
ENGINES = ("local", "ray")


class WorkerLost(RuntimeError):
    """A worker process died while it ran an input (its future raises this, or the engine's own error)."""


class Engine(Protocol):
    """What the scheduler needs from an engine."""

    name: str
    workers: int

    def submit(self, job: Job) -> Future[Outcome]:
        """Start ``job`` on a free worker (the scheduler keeps at most ``workers`` running)."""
        ...

    def progress(self) -> dict[int, int]:
        """Frames done so far of the inputs running now, by job index (the newest reports)."""
        ...

    def stop(self) -> None:
        """Ask the running inputs to stop after their current frame (they return ``interrupted``)."""
        ...

    def stop_requested(self) -> bool:
        """True once a stop was asked for, here or by a signal to a worker."""
        ...

    def close(self) -> None:
        """Wait for the workers to finish and free them."""
        ...


def local_workers() -> int:
    """The CPU cores this process may use (the local engine's default ``--workers``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------- local

_WORKER: BatchWorker | None = None  # the worker of this pool process


def _init_local(config: TrackerConfig, stop: Any, reports: Any, log_level: int) -> None:
    """Pool process start: logging, signals (module docstring), the worker (nothing loaded yet)."""
    global _WORKER
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("numba").setLevel(max(log_level, logging.INFO))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    reports.cancel_join_thread()  # a report not yet sent never holds up the process's exit

    def report(job: int, frames: int) -> None:
        reports.put_nowait((job, frames))

    _WORKER = BatchWorker(config, stop, report)


def _run_local(job: Job) -> Outcome:
    assert _WORKER is not None, "a pool process runs _init_local first"
    return _WORKER.run(job)


class LocalEngine:
    """A process pool of ``workers`` :class:`BatchWorker` (module docstring).

    Args:
        config: the batch configuration (:func:`tracker.batch.runner.batch_config`).
        workers: processes, >= 1.
        log_level: the workers' logging level (WARNING keeps the terminal to the progress bar).
    """

    name = "local"

    def __init__(self, config: TrackerConfig, workers: int, log_level: int = logging.WARNING) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self._config = config
        self._log_level = log_level
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads and native libraries
        self._stop = self._ctx.Event()
        self._reports = self._ctx.Queue()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self._ctx, initializer=_init_local,
                                   initargs=(self._config, self._stop, self._reports, self._log_level))  # fmt: skip

    def submit(self, job: Job) -> Future[Outcome]:
        try:
            return self._pool.submit(_run_local, job)
        except BrokenProcessPool:  # a worker died earlier: its inputs failed; start a new pool
            log.warning("a worker process died; starting a new pool")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(_run_local, job)

    def progress(self) -> dict[int, int]:
        latest: dict[int, int] = {}
        while True:
            try:
                job, frames = self._reports.get_nowait()
            except queue.Empty:
                return latest
            latest[job] = frames

    def stop(self) -> None:
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._reports.close()
        self._reports.join_thread()


# ----------------------------------------------------------------------------------------------- ray


class RayWorker:
    """The Ray actor: a :class:`BatchWorker` plus the calls that reach it while an input runs."""

    def __init__(self, config: TrackerConfig, log_level: int) -> None:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
        self._stop = threading.Event()
        self._frames: tuple[int, int] | None = None
        self._worker = BatchWorker(config, self._stop, self._report)

    def _report(self, job: int, frames: int) -> None:
        self._frames = (job, frames)

    def run(self, job: Job) -> Outcome:
        return self._worker.run(job)

    def progress(self) -> tuple[int, int] | None:
        """``(job index, frames)`` of the newest report, or None."""
        return self._frames

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._worker.close()


class RayEngine:
    """``workers`` Ray actors (module docstring).

    Args:
        config: the batch configuration.
        workers: actors; None = one per CPU of the cluster (per ``gpus_per_worker`` GPUs when given).
        address: the cluster to join (``ray.init(address=...)``); None starts a local instance (or
            joins ``RAY_ADDRESS``). A Ray already initialised in this process is used as it is.
        gpus_per_worker: GPUs each actor asks for (fractions share a GPU); None = no GPU.
        log_level: the actors' logging level; their logs reach this terminal only at DEBUG.
        max_workers: the most actors started when ``workers`` is None (the number of inputs).

    Raises:
        ConfigError: Ray is not installed, or a bad ``workers`` / ``gpus_per_worker``.
    """

    name = "ray"

    def __init__(self, config: TrackerConfig, workers: int | None = None, address: str | None = None,
                 gpus_per_worker: float | None = None, log_level: int = logging.WARNING,
                 max_workers: int | None = None) -> None:  # fmt: skip
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--engine ray needs Ray, an optional extra: pip install 'handtrack[ray]' "
                              "(or use --engine local)") from exc  # fmt: skip
        if gpus_per_worker is not None and not gpus_per_worker > 0:
            raise ConfigError(f"--gpus-per-worker must be > 0, got {gpus_per_worker}")
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            options: dict[str, Any] = {"log_to_driver": log_level <= logging.DEBUG, "logging_level": logging.WARNING}
            if address is None and not os.environ.get("RAY_ADDRESS"):  # a Ray of its own, for this batch only
                options["include_dashboard"] = False
                if workers is not None and workers > local_workers():  # as many as asked, like the local pool
                    options["num_cpus"] = workers
            ray.init(address=address, **options)
        elif address is not None:
            log.warning("Ray is already initialised in this process; --address %s is not used", address)
        if workers is None:
            resources = ray.cluster_resources()
            workers = int(resources.get("GPU", 0) // gpus_per_worker) if gpus_per_worker \
                else int(resources.get("CPU", 1))
            workers = min(workers, max_workers or workers)
        offered = ray.cluster_resources()
        if workers < 1:
            if self._owns_ray:
                ray.shutdown()
            raise ConfigError(f"no worker fits on the cluster ({offered}): ask for --workers N or fewer "
                              "--gpus-per-worker")  # fmt: skip
        if workers > offered.get("CPU", 0):
            log.warning("%d workers ask for a CPU each and the cluster has %g now: the others wait until CPUs are "
                        "free (or added)", workers, offered.get("CPU", 0))  # fmt: skip
        self.workers = workers
        actor_options: dict[str, Any] = {"num_cpus": 1, "max_concurrency": 2}
        if gpus_per_worker:
            actor_options["num_gpus"] = gpus_per_worker
        self._new_actor = lambda: ray.remote(**actor_options)(RayWorker).remote(config, log_level)
        self._actors = [self._new_actor() for _ in range(workers)]
        self._free = list(self._actors)
        self._running: dict[Future[Outcome], Any] = {}  # future -> its actor
        self._stopped = False
        self._polled = -math.inf

    def submit(self, job: Job) -> Future[Outcome]:
        self._reclaim()
        if not self._free:
            raise RuntimeError("RayEngine.submit: every actor is busy (the scheduler keeps at most `workers` running)")
        actor = self._free.pop()
        future: Future[Outcome] = actor.run.remote(job).future()
        self._running[future] = actor
        return future

    def _reclaim(self) -> None:
        """Actors whose input finished are free again; a dead actor is replaced."""
        for future in [f for f in self._running if f.done()]:
            actor = self._running.pop(future)
            if isinstance(future.exception(), self._ray.exceptions.RayActorError):
                log.warning("a Ray worker died; starting a new one")
                self._actors.remove(actor)
                actor = self._new_actor()
                self._actors.append(actor)
            self._free.append(actor)

    def progress(self) -> dict[int, int]:
        """The running actors' newest reports, asked for once a second at most (a call per actor)."""
        busy = list(self._running.values())
        now = time.monotonic()
        if not busy or now - self._polled < 1.0:
            return {}
        self._polled = now
        ready, _ = self._ray.wait([a.progress.remote() for a in busy], num_returns=len(busy), timeout=1.0)
        reports = [self._ray.get(r) for r in ready]
        return {job: frames for job, frames in (r for r in reports if r is not None)}

    def stop(self) -> None:
        self._stopped = True
        for actor in self._running.values():
            actor.stop.remote()

    def stop_requested(self) -> bool:
        return self._stopped

    def close(self) -> None:
        ray = self._ray
        for future in list(self._running):
            try:
                future.result()
            except Exception:  # noqa: BLE001 - the scheduler has reported it
                pass
        try:
            ray.get([a.close.remote() for a in self._actors], timeout=30)
        except Exception as exc:  # noqa: BLE001 - a dead actor has nothing to free
            log.debug("closing Ray workers: %s", exc)
        for actor in self._actors:
            ray.kill(actor)
        if self._owns_ray:
            ray.shutdown()


def make_engine(name: str, config: TrackerConfig, workers: int | None, address: str | None = None,
                gpus_per_worker: float | None = None, log_level: int = logging.WARNING,
                inputs: int | None = None) -> Engine:  # fmt: skip
    """The engine ``name`` (:data:`ENGINES`) with ``workers`` workers (None: the engine's default, at
    most ``inputs`` when given).

    Raises:
        ConfigError: an unknown engine, options of the Ray engine with ``local``, Ray missing.
    """
    if name == "local":
        if address is not None or gpus_per_worker is not None:
            raise ConfigError("--address and --gpus-per-worker are options of --engine ray")
        if workers is None:
            workers = min(local_workers(), inputs or local_workers())
        return LocalEngine(config, workers, log_level)
    if name == "ray":
        return RayEngine(config, workers, address, gpus_per_worker, log_level, inputs)
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
