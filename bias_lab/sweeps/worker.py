"""The worker: computes units, keeping the last model it loaded (loading bert-base per unit would
cost more than many units) and whatever a kind prepared for a job (e.g. a head metric's tokenized
data). ``--serial`` runs one in the driver's process; on Ray each worker is an actor wrapping one.

A unit that fails returns its one-line error instead of raising, so that bad input fails that
unit alone; only a worker's death reaches the driver as an exception (and is retried there)."""

from __future__ import annotations

import importlib
import os
import socket
import sys
import time
import traceback
from typing import Any, Callable

from ..errors import BiasLabError, Cancelled
from .units import ModelSpec, Unit, UnitOutput


class UnitWorker:
    def __init__(self, threads: int | None = None):
        self.threads = threads
        import torch

        from ..allocator import reuse_freed_buffers

        self.reuses_freed_buffers = reuse_freed_buffers()

        if threads is not None:
            torch.set_num_threads(int(threads))
        # What every unit needs, imported now: a worker's start-up, not its first unit, pays for it.
        for module in ("transformers", "bias_lab.models", "bias_lab.sweeps.kinds"):
            importlib.import_module(module)
        self._model_spec: ModelSpec | None = None
        self._loaded = None
        self._job_state: dict[Any, Any] = {}

    # -- facts about this worker

    def describe(self) -> dict:
        """Process id, host and device: the driver records where each unit ran, and a test kills a
        worker by its pid."""
        import torch

        from ..device import resolve_device

        facts = {"pid": os.getpid(), "host": socket.gethostname(), "device": str(resolve_device("auto")),
                 "threads": torch.get_num_threads(), "reuses_freed_buffers": self.reuses_freed_buffers}
        ray = sys.modules.get("ray")  # imported in a Ray worker; not worth importing in the driver
        if ray is not None and ray.is_initialized():
            facts["node"] = ray.util.get_node_ip_address()  # 127.0.0.1 for a loopback instance
        return facts

    # -- what kinds use

    def model(self, spec: ModelSpec):
        """The loaded model of ``spec``; the previous one is dropped when another is asked for."""
        if spec != self._model_spec:
            from ..models import load_model

            self._loaded = None
            self._job_state.clear()
            self._model_spec = None
            self._loaded = load_model(spec.source, kind=spec.kind, device=spec.device, dtype=spec.dtype,
                                      trust_remote_code=spec.trust_remote_code)
            self._model_spec = spec
        return self._loaded

    def preload(self, spec: ModelSpec) -> None:
        """Load a model before its first unit comes (while the driver plans); a model that cannot be
        loaded is left to that unit to report."""
        try:
            self.model(spec)
        except BiasLabError:
            pass

    def job_state(self, key, build: Callable[[], Any]):
        """Something a kind prepares once per job on this worker (kept with the model)."""
        if key not in self._job_state:
            self._job_state[key] = build()
        return self._job_state[key]

    # -- the work

    def run(self, unit: Unit) -> UnitOutput:
        from .kinds import sweep_kind

        started = time.perf_counter()
        try:
            output = sweep_kind(unit.kind).compute(self, unit)
        except (KeyboardInterrupt, Cancelled):
            raise
        except BiasLabError as error:
            output = UnitOutput(error=str(error), error_type="input")
        except Exception as error:  # an unexpected failure of this unit: reported, not retried
            last = traceback.extract_tb(error.__traceback__)[-1:]
            where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
            output = UnitOutput(error=" ".join(f"{type(error).__name__}: {error}".split()) + where,
                                error_type=type(error).__name__)
        output.seconds = time.perf_counter() - started
        output.worker = {"pid": os.getpid(), "host": socket.gethostname()}
        return output
