"""Sweep speed: the same IG2 units run ``--serial`` on one torch thread, then on Ray workers of one
thread each (2 workers, then 1) through a head on 127.0.0.1, and — the machine's own ceiling for
two computations at once — as two ``--serial`` sweeps of half the units each, side by side in two
processes (no Ray, no shared driver: the shell loop a sweep replaces). Figures: the speed-up of 2
workers over serial, how much of the two-process ceiling it reaches, and the scheduling overhead
per unit (1 Ray worker vs serial on the same units) as a share of a unit's time.

Two workloads: the paper's model shape (BERT-base, 12 × 768, one prompt per unit) and a small
BERT-shaped model (4 × 256, eight prompts per unit), both with BERT's 30522-word vocabulary and
random weights. Each run is repeated ``--rounds`` times in turns and the fastest round of each is
kept (the machine's speed drifts by ±10 % over minutes). Times are the units phase: from the first
unit handed out to the last one written (starting Ray, its workers and their first model load is
start-up, reported apart). Every Ray run's attributions and prompt table are checked bit-identical
to the serial run's; the benchmark exits non-zero naming the run where one differs.

Then the figures of the paper-scale projection: what the driver pays to write one BERT-base unit of
100 prompts, the per-prompt IG2 cost of the BERT-base shape on one thread here, the peak memory of
the serial command (``--bert-base-prompts``, 0 to skip), and the full 114-JUT BERT-base sweep on 1, 8
and 64 GPUs from a GPU's prompts/s (``--gpu-prompts-per-s``; default the H100 figure of
bench/RESULTS.md).

    python bench/sweep_bench.py [--workloads bert-base,small] [--rounds 2] [--steps 20]
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from common import SHARED_VOCAB, bench_parser, bert_base_folder, check_close, check_equal, machine_line

from bias_lab.neurons.prompts import ig2_prompts

PAPER_PROMPTS = 114 * 1700  # the 114 JUTs × 1700 prompts of the paper
PAPER_CHUNK = 100           # prompts per unit in assets/sweeps/neurons-paper.yaml
BERT_BASE = (12, 3072)      # layers, FFN width: a unit's attributions are prompts × 12 × 3072 float32


def small_model(folder: Path) -> Path:
    from bias_lab.tiny import _wordpiece_vocab, build_tiny_model

    if (folder / "config.json").is_file():
        return folder
    vocab = SHARED_VOCAB
    if not vocab.is_file():  # our own words padded to BERT's vocabulary size, as common.bert_base_folder
        folder.mkdir(parents=True, exist_ok=True)
        words = _wordpiece_vocab()
        vocab = folder.parent / "vocab.txt"
        vocab.write_text("\n".join(words + [f"[unused{i}]" for i in range(30522 - len(words))]) + "\n")
    return build_tiny_model("bert", folder, layers=4, hidden=256, heads=4, ffn=1024, vocab_file=vocab)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    units: int
    chunk: int  # prompts per unit
    build: object  # folder → model folder

    def model(self, root: Path) -> Path:
        return self.build(root / self.name)


WORKLOADS = {
    "bert-base": Workload("bert-base", "BERT-base shape: 12 layers × 768 hidden, FFN 3072", 12, 1, bert_base_folder),
    "small": Workload("small", "small BERT shape: 4 layers × 256 hidden, FFN 1024", 24, 8, small_model),
}


def prompt_file(path: Path, count: int, skip: int = 0) -> Path:
    prompts = ig2_prompts("gender", "N", "female", "male")[skip:skip + count]
    path.write_text("\n".join(json.dumps({"id": p.id, "prompt": p.prompt, "pair": [p.d1, p.d2]}) for p in prompts) + "\n")
    return path


class UnitsPhase:
    """A progress callback that times the units phase: first call (before any unit) to the last unit.
    With a ``barrier``, the first call waits there first (two processes start their units together)."""

    def __init__(self, barrier=None):
        self.first = self.last = None
        self.barrier = barrier

    def __call__(self, done, total, message=""):
        if self.first is None and self.barrier is not None:
            self.barrier.wait()
        now = time.perf_counter()
        self.first = self.first if self.first is not None else now
        if done == total:
            self.last = now

    @property
    def seconds(self) -> float:
        return self.last - self.first


@dataclass
class Timing:
    phase: float      # units phase, s
    wall: float       # with start-up, s
    folder: Path      # the job's run (attributions)
    units: int
    computing: float  # seconds the workers spent inside units, summed
    first: float = 0.0  # perf_counter at the units phase's start and end (comparable across processes)
    last: float = 0.0


def timed_sweep(name, model, prompts, steps, chunk, work, barrier=None, **where) -> Timing:
    """Run the sweep into its own store and time it."""
    import pandas as pd

    from bias_lab.store import RunStore
    from bias_lab.sweeps import parse_sweep, run_sweep

    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    spec = parse_sweep({"kind": "neurons", "out": str(out), "grid": {"model": [str(model)], "prompts": [str(prompts)]},
                        "settings": {"steps": steps}, "chunk": chunk}, source=name)
    phase = UnitsPhase(barrier)
    started = time.perf_counter()
    outcome = run_sweep(spec, store=RunStore(work / f"home-{name}"), progress=phase, **where)
    if not outcome.ok:
        raise SystemExit(f"CHECK FAILED: {name}: units failed: {outcome.failed[:2]}")
    computing = float(pd.read_parquet(out / "_sweep" / "units.parquet")["seconds"].sum())
    return Timing(phase.seconds, time.perf_counter() - started, spec.jobs[0].folder, outcome.counts["units"], computing,
                  phase.first, phase.last)


def _serial_half(model, prompts, steps, chunk, work, name, barrier, answers) -> None:
    """One of the two side-by-side serial sweeps (in its own process)."""
    torch.set_num_threads(1)
    timing = timed_sweep(name, model, prompts, steps, chunk, work, barrier, serial=True, threads_per_worker=1)
    answers.put((timing.first, timing.last, timing.computing))


def two_processes(workload: Workload, model: Path, steps: int, work: Path) -> Timing:
    """Half of the units in each of two processes, both starting their units at the same moment:
    the units phase is from then until the slower one's last unit."""
    work.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(2), context.Queue()
    first_half = -(-workload.units // 2) * workload.chunk  # an odd unit count: the first process gets one more
    bounds = ((0, first_half), (first_half, workload.units * workload.chunk))
    processes = []
    for index, (start, end) in enumerate(bounds):
        prompts = prompt_file(work / f"half-{index}.jsonl", end - start, skip=start)
        processes.append(context.Process(target=_serial_half, args=(model, prompts, steps, workload.chunk, work,
                                                                     f"half-{index}", barrier, answers)))
    started = time.perf_counter()
    for process in processes:
        process.start()
    results = [answers.get() for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"CHECK FAILED: a side-by-side serial sweep exited with {process.exitcode}")
    first, last = min(r[0] for r in results), max(r[1] for r in results)
    return Timing(last - first, time.perf_counter() - started, work, workload.units, sum(r[2] for r in results))


def check_same(name: str, folder: Path, oracle: Path) -> None:
    from bias_lab.neurons.run import IG2Result

    got, want = IG2Result.load(folder), IG2Result.load(oracle)
    check_equal(name, "prompt ids", got.prompts["id"], want.prompts["id"])
    check_close(name, "attributions", got.scores, want.scores, rtol=0.0)  # one thread each: bit-identical
    for column in ("p_d1", "p_d2", "gap"):
        check_close(name, column, got.prompts[column].to_numpy(), want.prompts[column].to_numpy(), rtol=0.0)


RUNS = (("serial", "serial", "1 × 1"), ("ray-2", "Ray", "2 × 1"), ("ray-1", "Ray", "1 × 1"),
        ("two", "two serial processes, no Ray", "2 × 1"))


def measure(workload: Workload, model: Path, steps: int, rounds: int, address: str, work: Path) -> dict[str, list[Timing]]:
    """Every run ``rounds`` times, in turns."""
    prompts = prompt_file(work / f"{workload.name}.jsonl", workload.units * workload.chunk)
    where = {"serial": dict(serial=True), "ray-2": dict(address=address, workers=2),
             "ray-1": dict(address=address, workers=1)}
    timings: dict[str, list[Timing]] = {name: [] for name, _, _ in RUNS}
    for round_ in range(rounds):
        for name, _, _ in RUNS:
            label = f"{workload.name}-{name}-{round_}"
            if name == "two":
                timing = two_processes(workload, model, steps, work / label)
            else:
                timing = timed_sweep(label, model, prompts, steps, workload.chunk, work, threads_per_worker=1,
                                     **where[name])
            timings[name].append(timing)
            print(f"  {label}: units phase {timing.phase:.1f} s (load average {os.getloadavg()[0]:.2f})", flush=True)
    oracle = timings["serial"][0].folder
    for name in ("ray-2", "ray-1"):
        for timing in timings[name]:
            check_same(name, timing.folder, oracle)
    return timings


def report_workload(workload: Workload, steps: int, timings: dict[str, list[Timing]]) -> dict:
    best = {name: min(runs, key=lambda timing: timing.phase) for name, runs in timings.items()}
    serial, two, one, pair = best["serial"], best["ray-2"], best["ray-1"], best["two"]
    units = serial.units
    print(f"\n### {workload.description} — {units} units of {workload.chunk} prompt(s), m = {steps}, "
          f"fastest of {len(timings['serial'])} rounds\n")
    print("| run | workers × threads | units phase s (each round) | units/s | in units s | outside units, ms/unit | "
          "wall s (with start-up) | × serial |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label, shape in RUNS:
        run = best[name]
        rounds = ", ".join(f"{timing.phase:.1f}" for timing in timings[name])
        outside = f"{(run.phase - run.computing) / units * 1000:.0f}" if shape.startswith("1") else "— (in parallel)"
        print(f"| {label} | {shape} | {run.phase:.1f} ({rounds}) | {units / run.phase:.3f} | {run.computing:.1f} | "
              f"{outside} | {run.wall:.1f} | {serial.phase / run.phase:.2f} |")
    speedup, ceiling = serial.phase / two.phase, serial.phase / pair.phase
    unit_s = serial.phase / units
    whole = (one.phase - serial.phase) / units
    outside = ((one.phase - one.computing) - (serial.phase - serial.computing)) / units
    print(f"\n2 Ray workers / serial: **{speedup:.2f}×** (target ≥ 1.8×); two serial processes side by side (no Ray): "
          f"{ceiling:.2f}× — the machine's ceiling for two at once on this workload; Ray reaches "
          f"**{speedup / ceiling:.0%}** of it.")
    print(f"Ray vs serial per unit (1 worker): outside the units' compute {outside * 1000:+.0f} ms = "
          f"**{outside / unit_s:+.1%}** of a unit's {unit_s:.2f} s (target ≤ 5 %); whole difference "
          f"{whole * 1000:+.0f} ms ({whole / unit_s:+.1%}), the rest being the units' own compute time. "
          "Ray results bit-identical to serial.")
    return {"outside_s": outside, "serial_per_prompt_s": serial.computing / (units * workload.chunk)}


def driver_write_seconds(work: Path, prompts: int = PAPER_CHUNK, repeats: int = 3) -> tuple[float, int]:
    """Seconds the driver takes to store one BERT-base unit (rows + attributions, fsynced), and its bytes."""
    import pandas as pd

    from bias_lab.store import RunStore

    run = RunStore(work / "home-write").start("ig2", {"bench": True}, artifact_dir=work / "write")
    layers, width = BERT_BASE
    tensor = torch.randn(prompts, layers, width)
    rows = pd.DataFrame({"id": [f"p{i}" for i in range(prompts)], "gap": [0.1] * prompts})
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        run.save_unit(f"{repeat:07d}", rows, {"ig2": tensor})
        best = min(best, time.perf_counter() - start)
    return best, tensor.numel() * 4


def bert_base_unit(work: Path, count: int, steps: int, model_dir: Path | None) -> tuple[float, float]:
    """A serial sweep of one unit of ``count`` prompts on a BERT-base-shaped model, run as the command
    in a child process on one thread: (IG2 seconds per prompt, the child's peak resident GiB — a
    worker's memory, its driver included)."""
    import subprocess
    import sys

    import yaml

    from bias_lab.neurons.run import IG2Result

    folder = bert_base_folder((model_dir or work) / "bert-base")
    sweep = work / "bert-base-command.yaml"
    out = work / "bert-base-command"
    sweep.write_text(yaml.safe_dump({"kind": "neurons", "out": str(out), "grid": {"model": [str(folder)], "prompts": [
        str(prompt_file(work / "bert-base-command.jsonl", count))]}, "settings": {"steps": steps}, "chunk": count}))
    environment = {**os.environ, "BIAS_LAB_HOME": str(work / "home-bert-base-command"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                               os.environ.get("PYTHONPATH")]))}
    # The peak is read inside the child (VmHWM of its own address space): the rusage of a child
    # started by fork would also count this large process's pages it shared before exec.
    command = ("import sys\nfrom bias_lab.cli import main\n"
               f"code = main(['sweep', {str(sweep)!r}, '--serial', '--threads-per-worker', '1'])\n"
               "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM:')))\n"
               "sys.exit(code)")
    child = subprocess.run([sys.executable, "-c", command], env=environment, capture_output=True, text=True)
    if child.returncode:
        raise SystemExit(f"CHECK FAILED: the serial BERT-base command exited with {child.returncode}")
    peak_gib = int(child.stdout.strip().splitlines()[-1].split()[1]) / 2**20  # kB
    (job,) = [path for path in out.iterdir() if path.name != "_sweep"]
    return IG2Result.load(job).config["timing"]["attribution_s"] / count, peak_gib


def main() -> None:
    from bias_lab.sweeps.cluster import start_loopback_head

    parser = bench_parser(__doc__)
    parser.add_argument("--workloads", default="bert-base,small", help="comma-separated: " + ", ".join(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--units", type=int, help="units per workload (default: 12 BERT-base, 24 small)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--bert-base-prompts", type=int, default=2)
    parser.add_argument("--gpu-prompts-per-s", type=float, default=43.9,
                        help="IG2 prompts/s of one GPU (default: H100, bench/RESULTS.md)")
    args = parser.parse_args()
    names = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        parser.error(f"--workloads {args.workloads!r}: choose from {', '.join(WORKLOADS)}")
    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    torch.set_num_threads(1)
    print(machine_line(torch.device("cpu")) + f"; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at "
          "the start (other processes' work: the 2-worker speed-up needs the cores free)")
    head = start_loopback_head(num_cpus=2)
    saved = {name: os.environ.get(name) for name in head.environment}
    os.environ.update(head.environment)
    measured = {}
    try:
        for name in names:
            workload = WORKLOADS[name]
            if args.units:
                workload = Workload(workload.name, workload.description, args.units, workload.chunk, workload.build)
            model = workload.model(args.model_dir or work)
            measured[name] = (workload, measure(workload, model, args.steps, args.rounds, head.address, work))
    finally:
        head.stop()
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    figures = {name: report_workload(workload, args.steps, timings) for name, (workload, timings) in measured.items()}
    outside = max(max(figure["outside_s"] for figure in figures.values()), 0.0)

    write_s, unit_bytes = driver_write_seconds(work)
    print(f"\ndriver: storing one BERT-base unit of {PAPER_CHUNK} prompts ({unit_bytes / 2**20:.1f} MiB of attributions) "
          f"takes {write_s:.3f} s ({unit_bytes / 2**20 / write_s:.0f} MiB/s)")
    if "bert-base" in figures:
        per_prompt = figures["bert-base"]["serial_per_prompt_s"]
        print(f"BERT-base shape, one thread here: {per_prompt:.2f} s per prompt (m = {args.steps}); the paper's "
              f"{PAPER_PROMPTS} prompts would take {PAPER_PROMPTS * per_prompt / 86400:.1f} days on one such thread")
    if args.bert_base_prompts:
        per_prompt, peak_gib = bert_base_unit(work, args.bert_base_prompts, args.steps, args.model_dir)
        print(f"the serial command on the BERT-base shape (driver and worker in one process, one unit of "
              f"{args.bert_base_prompts} prompts, {per_prompt:.2f} s per prompt) peaked at {peak_gib:.2f} GiB resident")
    rate = args.gpu_prompts_per_s
    units_total = -(-PAPER_PROMPTS // PAPER_CHUNK)
    # A worker waits only for the hand-out (the driver writes while the workers compute the next units).
    print(f"\nprojection: 114 JUTs × 1700 prompts of BERT-base = {PAPER_PROMPTS} prompts in {units_total} units of "
          f"{PAPER_CHUNK}, at {rate:g} prompts/s per GPU (one worker per GPU), {outside * 1000:.0f} ms per unit outside "
          f"compute (measured above), {write_s * 1000:.0f} ms of the driver's writing per unit (overlapping the compute):")
    print("| GPUs | compute min | outside compute min | driver busy writing min (MiB/s it ingests) | total min |")
    print("|---|---|---|---|---|")
    for gpus in (1, 8, 64):
        compute = PAPER_PROMPTS / (rate * gpus)
        waiting = units_total / gpus * outside
        total = compute + waiting
        busy = units_total * write_s  # one driver writes every unit: the floor of the total
        ingest = units_total * unit_bytes / 2**20 / max(total, busy)
        print(f"| {gpus} | {compute / 60:.1f} | {waiting / 60:.2f} | {busy / 60:.2f} ({ingest:.0f}) | "
              f"{max(total, busy) / 60:.1f} |")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
