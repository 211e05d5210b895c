"""Sweep speed: the same IG2 units (small BERT-shaped model, 30522-word vocabulary) run ``--serial``
on one torch thread, then on Ray workers of one thread each (2 workers, then 1) through a head on
127.0.0.1 — the speed-up of 2 workers over serial, and the scheduling overhead per unit (1 Ray
worker vs serial on the same units) as a share of a unit's time. Times are the units phase: from
the first unit handed out to the last one written (starting Ray and its workers is a fixed cost,
reported apart). Every Ray run's attributions and prompt table are checked equal to the serial
run's; the benchmark exits non-zero naming the run where one differs.

Then the figures of the paper-scale projection: what the driver pays to write one BERT-base unit of
100 prompts, the per-prompt IG2 cost of a BERT-base-shaped model on one thread here
(``--bert-base-prompts``, 0 to skip), and the full 114-JUT BERT-base sweep on 1, 8 and 64 GPUs from a
GPU's prompts/s (``--gpu-prompts-per-s``; default the H100 figure of bench/RESULTS.md).

    python bench/sweep_bench.py [--units 24] [--chunk 8] [--steps 20] [--bert-base-prompts 2]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
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


def prompt_file(path: Path, count: int) -> Path:
    prompts = ig2_prompts("gender", "N", "female", "male")[:count]
    path.write_text("\n".join(json.dumps({"id": p.id, "prompt": p.prompt, "pair": [p.d1, p.d2]}) for p in prompts) + "\n")
    return path


class UnitsPhase:
    """A progress callback that times the units phase: first call (before any unit) to the last unit."""

    def __init__(self):
        self.first = self.last = None

    def __call__(self, done, total, message=""):
        now = time.perf_counter()
        self.first = self.first if self.first is not None else now
        if done == total:
            self.last = now

    @property
    def seconds(self) -> float:
        return self.last - self.first


def timed_sweep(name, model, prompts, steps, chunk, work, **where):
    """Run the sweep into its own store: (units-phase seconds, wall seconds, result folder, units,
    seconds the workers spent in units)."""
    from bias_lab.store import RunStore
    from bias_lab.sweeps import parse_sweep, run_sweep

    out = work / name
    spec = parse_sweep({"kind": "neurons", "out": str(out), "grid": {"model": [str(model)], "prompts": [str(prompts)]},
                        "settings": {"steps": steps}, "chunk": chunk}, source=name)
    phase = UnitsPhase()
    started = time.perf_counter()
    outcome = run_sweep(spec, store=RunStore(work / f"home-{name}"), progress=phase, **where)
    if not outcome.ok:
        raise SystemExit(f"CHECK FAILED: {name}: units failed: {outcome.failed[:2]}")
    import pandas as pd

    computing = float(pd.read_parquet(out / "_sweep" / "units.parquet")["seconds"].sum())
    return phase.seconds, time.perf_counter() - started, spec.jobs[0].folder, outcome.counts["units"], computing


def check_same(name: str, folder: Path, oracle: Path) -> None:
    from bias_lab.neurons.run import IG2Result

    got, want = IG2Result.load(folder), IG2Result.load(oracle)
    check_equal(name, "prompt ids", got.prompts["id"], want.prompts["id"])
    check_close(name, "attributions", got.scores, want.scores, rtol=0.0)  # one thread each: bit-identical
    for column in ("p_d1", "p_d2", "gap"):
        check_close(name, column, got.prompts[column].to_numpy(), want.prompts[column].to_numpy(), rtol=0.0)


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
    import resource
    import subprocess
    import sys

    import yaml

    from bias_lab.neurons.run import IG2Result

    folder = bert_base_folder(model_dir or work / "bert-base-random")
    sweep = work / "bert-base.yaml"
    out = work / "bert-base"
    sweep.write_text(yaml.safe_dump({"kind": "neurons", "out": str(out), "grid": {"model": [str(folder)], "prompts": [
        str(prompt_file(work / "bert-base.jsonl", count))]}, "settings": {"steps": steps}, "chunk": count}))
    environment = {**os.environ, "BIAS_LAB_HOME": str(work / "home-bert-base"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                               os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "bias_lab", "sweep", str(sweep), "--serial", "--threads-per-worker", "1"],
                   env=environment, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    (job,) = [path for path in out.iterdir() if path.name != "_sweep"]
    return IG2Result.load(job).config["timing"]["attribution_s"] / count, peak_gib


def main() -> None:
    from bias_lab.sweeps.cluster import start_loopback_head

    parser = bench_parser(__doc__)
    parser.add_argument("--units", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=8, help="prompts per unit")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--bert-base-prompts", type=int, default=2)
    parser.add_argument("--gpu-prompts-per-s", type=float, default=43.9,
                        help="IG2 prompts/s of one GPU (default: H100, bench/RESULTS.md)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    torch.set_num_threads(1)
    model = small_model((args.model_dir or work) / "small-bert")
    prompts = prompt_file(work / "prompts.jsonl", args.units * args.chunk)
    print(machine_line(torch.device("cpu")) + f"; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at "
          "the start (other processes' work: the 2-worker speed-up needs the cores free)")
    print(f"model: BERT-shaped, 4 layers × 256 hidden, FFN 1024, 30522-word vocabulary, random weights; "
          f"{args.units} units of {args.chunk} IG2 prompts (gender / N / female–male), m = {args.steps}")

    head = start_loopback_head(num_cpus=2)
    saved = {name: os.environ.get(name) for name in head.environment}
    os.environ.update(head.environment)
    try:
        serial = timed_sweep("serial", model, prompts, args.steps, args.chunk, work, serial=True, threads_per_worker=1)
        two = timed_sweep("ray-2", model, prompts, args.steps, args.chunk, work, address=head.address, workers=2,
                          threads_per_worker=1)
        one = timed_sweep("ray-1", model, prompts, args.steps, args.chunk, work, address=head.address, workers=1,
                          threads_per_worker=1)
    finally:
        head.stop()
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    for name, run in (("2 Ray workers", two), ("1 Ray worker", one)):
        check_same(name, run[2], serial[2])
    units = serial[3]
    unit_s = serial[0] / units
    overhead = (one[0] - serial[0]) / units
    # Outside the units' own compute (as the workers timed it): hand-out, result transfer, the driver's writes.
    outside = ((one[0] - one[4]) - (serial[0] - serial[4])) / units
    print("\n| run | workers × threads | units phase s | units/s | in units s | outside units, ms/unit | "
          "wall s (with start-up) | × serial |")
    print("|---|---|---|---|---|---|---|---|")
    for name, shape, run in (("serial", "1 × 1", serial), ("Ray", "2 × 1", two), ("Ray", "1 × 1", one)):
        outside_ms = f"{(run[0] - run[4]) / units * 1000:.0f}" if shape.startswith("1") else "— (in parallel)"
        print(f"| {name} | {shape} | {run[0]:.1f} | {units / run[0]:.3f} | {run[4]:.1f} | {outside_ms} | "
              f"{run[1]:.1f} | {serial[0] / run[0]:.2f} |")
    print(f"\n2 workers / serial: **{serial[0] / two[0]:.2f}×** (target ≥ 1.8×); Ray vs serial per unit (1 worker): "
          f"{overhead * 1000:+.0f} ms = **{overhead / unit_s:+.1%}** of a unit's {unit_s:.2f} s (target ≤ 5 %), of "
          f"which {outside * 1000:+.0f} ms ({outside / unit_s:+.1%}) outside the units' compute — the rest is the "
          "units' own time varying between runs; Ray results identical to serial")

    write_s, unit_bytes = driver_write_seconds(work)
    print(f"\ndriver: storing one BERT-base unit of {PAPER_CHUNK} prompts ({unit_bytes / 2**20:.1f} MiB of attributions) "
          f"takes {write_s:.3f} s ({unit_bytes / 2**20 / write_s:.0f} MiB/s)")
    if args.bert_base_prompts:
        per_prompt, peak_gib = bert_base_unit(work, args.bert_base_prompts, args.steps, args.model_dir)
        print(f"BERT-base shape, one thread here: {per_prompt:.2f} s per prompt (m = {args.steps}); the paper's "
              f"{PAPER_PROMPTS} prompts would take {PAPER_PROMPTS * per_prompt / 86400:.1f} days on one such thread; "
              f"the serial command (driver and worker in one process) peaked at {peak_gib:.2f} GiB resident")
    rate = args.gpu_prompts_per_s
    units_total = -(-PAPER_PROMPTS // PAPER_CHUNK)
    idle = max(outside, 0.0) + write_s  # per unit, a worker waits for the hand-out and its unit's write
    print(f"\nprojection: 114 JUTs × 1700 prompts of BERT-base = {PAPER_PROMPTS} prompts in {units_total} units of "
          f"{PAPER_CHUNK}, at {rate:g} prompts/s per GPU (one worker per GPU), {idle * 1000:.0f} ms per unit outside "
          "compute (measured above: scheduling + the driver's write):")
    print("| GPUs | compute min | outside compute min | driver busy writing min (MiB/s it ingests) | total min |")
    print("|---|---|---|---|---|")
    for gpus in (1, 8, 64):
        compute = PAPER_PROMPTS / (rate * gpus)
        waiting = units_total / gpus * idle
        total = compute + waiting
        busy = units_total * write_s  # one driver writes every unit: the floor of the total
        ingest = units_total * unit_bytes / 2**20 / total
        print(f"| {gpus} | {compute / 60:.1f} | {waiting / 60:.2f} | {busy / 60:.2f} ({ingest:.0f}) | "
              f"{max(total, busy) / 60:.1f} |")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
