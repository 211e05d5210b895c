"""Paper-scale sweeps: a grid of independent units run on this machine or a Ray cluster.

    from bias_lab.sweeps import load_sweep, run_sweep, sweep_status

    outcome = run_sweep("assets/sweeps/neurons.yaml", serial=True)   # or address="auto"
    print(outcome.line(), sweep_status(outcome.run_id).line())

A sweep file names a unit kind (``neurons``, ``heads``, ``evaluate``, ``fasp``, ``distill``), an
output folder, a grid whose product gives the jobs and settings shared by all jobs
(:mod:`.spec`). Each job is an ordinary resumable run in its own folder, split into units
(:mod:`.kinds`); workers compute units (:mod:`.worker`) in this process or as Ray actors
(:mod:`.backends`, :mod:`.cluster`); the driver (:mod:`.driver`) is the only writer of the run
store and keeps the sweep's own run (:mod:`.record`), whose status :mod:`.status` reads.
"""

from .driver import SweepOutcome, run_sweep
from .params import SweepFileError
from .record import SweepResult
from .spec import SweepSpec, load_sweep, parse_sweep
from .status import SweepStatus, sweep_record, sweep_status

__all__ = ["SweepFileError", "SweepOutcome", "SweepResult", "SweepSpec", "SweepStatus", "load_sweep", "parse_sweep",
           "run_sweep", "sweep_record", "sweep_status"]
