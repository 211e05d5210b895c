"""``bias-lab sweep SWEEP.yaml`` and ``bias-lab sweep status RUN``: a grid of runs as one resumable
command, on this machine or a Ray cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import print_json, print_table

EXAMPLES = """\
where it runs:
  (no flag)            a local Ray instance on 127.0.0.1, as many workers as CPUs (or GPUs, with --gpus-per-worker)
  --address auto       the cluster started with `ray start --head` on this machine (also: HOST:PORT, or $RAY_ADDRESS)
  --serial             no Ray: the same units one after another in this process (debugging; the test oracle)

examples:
  bias-lab sweep assets/sweeps/neurons.yaml --serial
  bias-lab sweep sweeps/ig2-paper.yaml --address auto --gpus-per-worker 0.5
  bias-lab sweep status sweeps/bert-gender

Re-running the same command resumes: finished units are skipped, none is written twice. A unit that
fails does so alone (its error is listed; exit code 1); a bad sweep file is refused before anything
starts (exit 2). Example sweep files of every kind are in assets/sweeps/.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a grid of runs (a sweep file) here or on a Ray cluster; `sweep status RUN`",
        description="Run every job of a sweep file — IG2 over models × prompt sets (neurons), head scoring (heads), "
                    "benchmarks × models × interventions (evaluate), a FASP (alpha, gamma) grid (fasp), "
                    "distillation variants (distill) — as ordinary resumable runs, split into units that Ray "
                    "workers compute; or show a sweep's status with `bias-lab sweep status RUN`.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", metavar="SWEEP.yaml|status", help="the sweep file (YAML or JSON), or `status`")
    parser.add_argument("run", nargs="?", metavar="RUN",
                        help="with status: the sweep's run id, its out folder or OUT/_sweep")
    where = parser.add_argument_group("where it runs")
    where.add_argument("--serial", action="store_true", help="run the units one by one in this process, without Ray")
    where.add_argument("--address", metavar="auto|HOST:PORT",
                       help="join a running Ray cluster (default: $RAY_ADDRESS, else a new local instance)")
    where.add_argument("--workers", type=int, help="Ray workers (default: as many as the cluster's CPUs, or GPUs)")
    where.add_argument("--gpus-per-worker", type=float, default=0.0,
                       help="GPUs per worker; a fraction shares a GPU (0.5: two workers per GPU)")
    where.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per worker (default 1)")
    where.add_argument("--threads-per-worker", type=int, help="torch threads per worker (default: its CPUs; "
                                                              "with --serial: torch's default)")
    faults = parser.add_argument_group("faults")
    faults.add_argument("--retries", type=int, default=2, help="times a unit whose worker died is tried again (2)")
    faults.add_argument("--max-restarts", type=int, default=3, help="times Ray restarts a worker that died (3)")
    parser.add_argument("--json", action="store_true", help="status: print the units as JSON")
    parser.set_defaults(handler=sweep_command)


def sweep_command(args) -> int:
    if args.sweep == "status" and not Path("status").is_file():
        return status_command(args)
    if args.run is not None:
        raise BiasLabError(f"unexpected {args.run!r}: `bias-lab sweep SWEEP.yaml` takes one sweep file "
                           "(`bias-lab sweep status RUN` shows a sweep)")
    if args.json:
        raise BiasLabError("--json applies to `bias-lab sweep status RUN`")
    if args.serial and (args.address or args.workers or args.gpus_per_worker):
        raise BiasLabError("--serial runs in this process: --address, --workers and --gpus-per-worker apply to Ray")
    from ..sweeps import load_sweep, run_sweep
    from ..sweeps.driver import check_resumable

    spec = load_sweep(args.sweep)  # every check before anything starts
    check_resumable(spec)
    print(f"sweep: {len(spec.jobs)} {spec.kind} jobs → {spec.out}", file=sys.stderr)
    bar = TqdmProgress("units", unit="unit", disable=False)  # shown in logs too: sweeps run unattended
    try:
        outcome = run_sweep(spec, serial=args.serial, address=args.address, workers=args.workers,
                            gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
                            threads_per_worker=args.threads_per_worker, retries=args.retries,
                            max_restarts=args.max_restarts, progress=bar)
    finally:
        bar.close()
    print(outcome.line())
    for key, attempts in outcome.retried.items():
        print(f"retried: {key} ({attempts} {'retry' if attempts == 1 else 'retries'}: its worker died)")
    for key, error in outcome.failed:
        print(f"failed: {key}: {error}")
    print(f"→ {spec.out} (sweep run {outcome.run_id}; `bias-lab sweep status {outcome.run_id}`)")
    return 0 if outcome.ok else 1


def status_command(args) -> int:
    from ..sweeps import sweep_status

    if args.run is None:
        raise BiasLabError("`bias-lab sweep status` needs the sweep: its run id, its out folder or OUT/_sweep")
    status = sweep_status(args.run)
    if args.json:
        print_json({"id": status.record.id, "status": status.record.status, "counts": status.counts,
                    "updated_at": status.updated_at, "units": status.units.astype(object).where(
                        status.units.notna(), None).to_dict("records")})
        return 0
    print(f"sweep {status.record.id} ({status.record.artifact_dir.parent}): {status.line()}")
    for state in ("running", "failed"):
        rows = status.units[status.units["status"] == state]
        if len(rows):
            print(f"\n{state}:")
            columns = ["unit", "attempts", "worker_pid", "worker_host"] if state == "running" else \
                ["unit", "attempts", "error"]
            print_table(rows.astype(object).where(rows.notna(), "").to_dict("records"), columns)
    retried = status.units[(status.units["retries"].fillna(0) > 0) & (status.units["status"] == "done")]
    if len(retried):
        print("\ndone after a retry: " + ", ".join(f"{r.unit} ({int(r.retries)})" for r in retried.itertuples()))
    return 0
