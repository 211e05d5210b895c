"""How units reach workers: in this process (``--serial``: the same units, one at a time — for
debugging and as the test oracle) or on Ray actors, each keeping its model loaded across units.

Both offer the same three steps to the driver: ``submit`` a unit to a free worker, ``wait`` for
finished units (:class:`Outcome`), ``close``. On Ray a worker whose process dies comes back as a
restarted actor (``max_restarts``); its unit comes back as an outcome with ``died`` set, and the
driver — not Ray's own ``max_task_retries``, which would re-run it without telling anyone —
decides whether to retry it, so that every attempt is recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import BiasLabError
from .units import Unit, UnitOutput
from .worker import UnitWorker

WORKER_START_TIMEOUT_S = 300.0


@dataclass
class Outcome:
    unit: Unit
    output: UnitOutput | None = None  # None when the worker died
    died: str | None = None  # how the worker died, when it did
    worker: dict = field(default_factory=dict)


class SerialBackend:
    """One worker in the driver's process."""

    name = "serial"

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._worker: UnitWorker | None = None
        self._pending: Unit | None = None
        self._threads_before: int | None = None
        self.workers: list[dict] = []

    def start(self) -> list[dict]:
        import torch

        self._threads_before = torch.get_num_threads()
        self._worker = UnitWorker(self.threads)
        self.workers = [self._worker.describe()]
        return self.workers

    @property
    def description(self) -> str:
        return "serial (in this process)"

    def preload(self, spec) -> None:
        self._worker.preload(spec)

    def wait_preloaded(self) -> None:
        pass

    def free_slots(self) -> int:
        return 0 if self._pending is not None else 1

    def has_workers(self) -> bool:
        return True

    def busy(self) -> int:
        return int(self._pending is not None)

    def submit(self, unit: Unit) -> dict:
        self._pending = unit
        return self.workers[0]

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if self._pending is None:
            return []
        unit, self._pending = self._pending, None
        return [Outcome(unit, self._worker.run(unit), worker=self.workers[0])]

    def close(self) -> None:
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)
        self._worker = None


class RayBackend:
    """``workers`` actors (default: as many as the cluster's GPUs, or CPUs, allow), each asking for
    ``gpus_per_worker`` GPUs (fractions share a GPU) and ``cpus_per_worker`` CPUs."""

    name = "ray"

    def __init__(self, address: str | None = None, *, workers: int | None = None, gpus_per_worker: float = 0.0,
                 cpus_per_worker: float = 1.0, threads_per_worker: int | None = None, max_restarts: int = 3):
        from .cluster import RaySession

        if workers is not None and workers < 1:
            raise BiasLabError(f"--workers {workers} must be at least 1")
        if gpus_per_worker < 0 or cpus_per_worker < 0:
            raise BiasLabError("--gpus-per-worker and --cpus-per-worker cannot be negative")
        if max_restarts < 0:
            raise BiasLabError(f"--max-restarts {max_restarts} cannot be negative")
        self.session = RaySession(address)
        self.requested = workers
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        if threads_per_worker is not None and threads_per_worker < 1:
            raise BiasLabError(f"--threads-per-worker {threads_per_worker} must be at least 1")
        # torch's threads per worker: as many as its CPUs, so that workers do not crowd each other.
        self.threads = threads_per_worker or max(1, math.floor(cpus_per_worker))
        self.max_restarts = max_restarts
        self.workers: list[dict] = []
        self._actors: list = []
        self._info: dict[int, dict] = {}  # id(actor) → its describe()
        self._idle: list = []
        self._in_flight: dict = {}  # object ref → (actor, unit)
        self._recovering: dict = {}  # probe ref → actor
        self._preloads: list = []

    @property
    def description(self) -> str:
        gpus = f", {self.gpus_per_worker:g} GPU" if self.gpus_per_worker else ""
        return f"{len(self._actors)} Ray workers ({self.cpus_per_worker:g} CPU{gpus} each) on {self.session.description}"

    def _worker_count(self, resources: dict) -> int:
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        if self.requested is None:
            count = math.floor(gpus / self.gpus_per_worker + 1e-9) if self.gpus_per_worker \
                else math.floor(cpus / self.cpus_per_worker + 1e-9) if self.cpus_per_worker else 1
            if count < 1:
                what = f"{self.gpus_per_worker:g} GPU" if self.gpus_per_worker else f"{self.cpus_per_worker:g} CPU"
                raise BiasLabError(f"the cluster ({cpus:g} CPUs, {gpus:g} GPUs) has no room for one worker with {what}")
            return count
        count = self.requested
        for name, each, have in (("GPU", self.gpus_per_worker, gpus), ("CPU", self.cpus_per_worker, cpus)):
            if count * each > have + 1e-9:
                raise BiasLabError(f"--workers {count} × {each:g} {name} per worker needs {count * each:g} {name}s; "
                                   f"the cluster has {have:g}")
        return count

    def start(self) -> list[dict]:
        import ray

        self.session.__enter__()
        try:
            count = self._worker_count(ray.cluster_resources())
            actor_class = ray.remote(UnitWorker)
            options = dict(num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker,
                           max_restarts=self.max_restarts, max_task_retries=0)
            self._actors = [actor_class.options(**options).remote(self.threads) for _ in range(count)]
            try:
                infos = ray.get([actor.describe.remote() for actor in self._actors], timeout=WORKER_START_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                raise BiasLabError(f"the {count} workers did not start within {WORKER_START_TIMEOUT_S:.0f} s: "
                                   "does the cluster have the CPUs and GPUs they ask for?") from None
        except BaseException:
            self.close()
            raise
        for actor, info in zip(self._actors, infos):
            self._info[id(actor)] = info
        self._idle = list(self._actors)
        self.workers = list(infos)
        return self.workers

    def preload(self, spec) -> None:
        """Every worker starts loading ``spec`` now (:meth:`wait_preloaded` waits for them)."""
        self._preloads = [actor.preload.remote(spec) for actor in self._actors]

    def wait_preloaded(self) -> None:
        """Wait for the loads :meth:`preload` started, so that the units start together. A worker
        that died meanwhile is noticed by its first unit (and retried there)."""
        import ray
        from ray.exceptions import RayError

        for ref in self._preloads:
            try:
                ray.get(ref)
            except RayError:
                pass
        self._preloads = []

    def free_slots(self) -> int:
        return len(self._idle)

    def busy(self) -> int:
        return len(self._in_flight)

    def has_workers(self) -> bool:
        return bool(self._idle or self._in_flight or self._recovering)

    def submit(self, unit: Unit) -> dict:
        actor = self._idle.pop(0)
        self._in_flight[actor.run.remote(unit)] = (actor, unit)
        return self._info[id(actor)]

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        import ray
        from ray.exceptions import RayActorError, RayError

        refs = list(self._in_flight) + list(self._recovering)
        if not refs:
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # collect everything that is ready now, not only the first
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes = []
        for ref in ready:
            if ref in self._recovering:
                actor = self._recovering.pop(ref)
                try:
                    self._info[id(actor)] = ray.get(ref)
                    self._idle.append(actor)
                except RayError:
                    pass  # restarted too often: the actor is gone for good, the others go on
                continue
            actor, unit = self._in_flight.pop(ref)
            info = self._info[id(actor)]
            try:
                outcomes.append(Outcome(unit, ray.get(ref), worker=info))
                self._idle.append(actor)
            except RayActorError as error:
                reason = " ".join(str(error).split())[:160]
                outcomes.append(Outcome(unit, died=f"worker {info.get('pid')} on {info.get('host')} died ({reason})",
                                        worker=info))
                # Back in the pool once restarted: this probe waits through the restart (or fails for good).
                self._recovering[actor.describe.options(max_task_retries=-1).remote()] = actor
            except RayError as error:  # the unit's result could not come back (not a worker death)
                message = " ".join(f"{type(error).__name__}: {error}".split())[:300]
                outcomes.append(Outcome(unit, UnitOutput(error=message, error_type=type(error).__name__), worker=info))
                self._idle.append(actor)
        return outcomes

    def close(self) -> None:
        try:
            import ray

            if ray.is_initialized():
                for actor in self._actors:
                    try:
                        ray.kill(actor, no_restart=True)
                    except Exception:  # already gone
                        pass
        finally:
            self._actors, self._idle, self._in_flight, self._recovering = [], [], {}, {}
            self.session.__exit__(None, None, None)
