"""GLUE fine-tuning speed under a fixed mask: seconds per step of ``bias_lab.finetune.train.finetune``
(forward, backward, gradient clipping, AdamW) on a BERT-base-shaped sequence classifier, with a
random mask held fixed (the model trains as W ⊙ M: the mask written into the weights, the masked
weights' gradients zeroed) against the same step with no mask. Target: masked ≤ 1.1 × unmasked.
Checks that every masked weight is still 0 afterwards (exits non-zero otherwise).

    python bench/glue_bench.py [--steps 6] [--batch 32] [--tokens 128] [--block unstructured] [--keep 0.5]
"""

from __future__ import annotations

import time

import torch

from common import bench_parser, bert_base_folder, machine_line

from bias_lab.finetune.examples import LabelledText
from bias_lab.finetune.train import FinetuneSettings, finetune, load_classifier
from bias_lab.pruning.layout import block_shape, expand, parse_block, pruned_sites
from bias_lab.pruning.masks import MaskSet


def random_mask(loaded, block, keep: float) -> MaskSet:
    generator = torch.Generator().manual_seed(0)
    masks = {site.key: torch.rand(block_shape(site.shape, block, site, loaded.num_heads), generator=generator) < keep
             for site in pruned_sites(loaded, block)}
    return MaskSet(block, masks, {"head_roles": ["value"]})


def seconds_per_step(loaded, examples, settings, mask) -> tuple[float, float, int]:
    """Mean wall-clock and CPU seconds (this process, all threads) of the steps after the first
    (warm-up), timed between progress reports. On a CPU shared with other work the CPU time is the
    steadier measure: waiting for a core is not counted."""
    stamps = []

    def progress(done, total, message=""):
        if loaded.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append((time.perf_counter(), time.process_time()))

    finetune(loaded, examples, settings, mask=mask, progress=progress)
    steps = len(stamps) - 2  # stamps[0]: before the first step; stamps[1]: after the warm-up step
    return ((stamps[-1][0] - stamps[1][0]) / steps, (stamps[-1][1] - stamps[1][1]) / steps, steps)


def main() -> None:
    import statistics
    import tempfile
    from pathlib import Path

    parser = bench_parser(__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--block", default="unstructured")
    parser.add_argument("--keep", type=float, default=0.5, help="share of the mask's blocks kept")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating unmasked / masked runs; the median of each is reported (a shared CPU is noisy)")
    args = parser.parse_args()
    folder = bert_base_folder(args.model_dir or Path(tempfile.mkdtemp()) / "bert-base-random")
    loaded = load_classifier(str(folder), ("negative", "positive"), device=args.device, seed=0)
    start = {name: value.detach().clone() for name, value in loaded.model.state_dict().items()}
    # Sentences of exactly --tokens tokens with [CLS] and [SEP]: each step sees a full batch.
    examples = [LabelledText(" ".join(["the"] * (args.tokens - 2)), None, i % 2)
                for i in range(args.batch * (args.steps + 1))]
    settings = FinetuneSettings(epochs=1, batch_size=args.batch, max_length=args.tokens, lr=2e-5)
    block = parse_block(args.block)
    mask = random_mask(loaded, block, args.keep)
    print(machine_line(loaded.device))
    print(f"model: BERT-base shape sequence classifier, random weights; batch {args.batch} × {args.tokens} tokens; "
          f"AdamW, clipping; mask: {args.block}, {100 * args.keep:.0f} % kept")
    times = {"unmasked": [], "masked": []}
    cpu_times = {"unmasked": [], "masked": []}
    for _ in range(args.repeats):
        for variant in times:
            loaded.model.load_state_dict(start)  # every run starts from the same weights
            seconds, cpu_seconds, steps = seconds_per_step(loaded, examples, settings,
                                                           mask if variant == "masked" else None)
            times[variant].append(seconds)
            cpu_times[variant].append(cpu_seconds)
            print(f"  {variant}: {seconds:.3f} s/step wall, {cpu_seconds:.3f} s CPU", flush=True)
    for site in mask.check(loaded):  # held fixed: every masked weight is still exactly 0
        kept = expand(mask.masks[site.key].float(), site.shape, block, site, loaded.head_size).bool()
        weight = site.module.weight.detach()
        weight = weight.T if weight.shape != kept.shape else weight
        if bool(weight[~kept.to(weight.device)].any()):
            raise SystemExit(f"{site.key}: masked weights are not 0 after fine-tuning under the mask")
    plain, masked = statistics.median(times["unmasked"]), statistics.median(times["masked"])
    plain_cpu, masked_cpu = statistics.median(cpu_times["unmasked"]), statistics.median(cpu_times["masked"])
    # What holding the mask adds to a step, timed alone (less noisy on a shared machine than the
    # difference of two step times): one multiplication of each masked matrix's gradient.
    grads = [(torch.randn_like(site.module.weight),
              expand(mask.masks[site.key].bool(), site.shape, block, site, loaded.head_size).to(loaded.device))
             for site in mask.check(loaded)]
    grads = [(grad, keep.T.contiguous() if keep.shape != grad.shape else keep) for grad, keep in grads]
    start_time = time.perf_counter()
    for _ in range(5):
        for grad, keep in grads:
            grad * keep
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()
    overhead = (time.perf_counter() - start_time) / 5
    print()
    print("| step | wall s (median) | × unmasked | CPU s (median) | × unmasked |")
    print("|---|---|---|---|---|")
    print(f"| unmasked | {plain:.3f} | 1.00 | {plain_cpu:.3f} | 1.00 |")
    print(f"| fixed mask (W ⊙ M: weights baked, masked gradients zeroed) | {masked:.3f} | {masked / plain:.2f} | "
          f"{masked_cpu:.3f} | {masked_cpu / plain_cpu:.2f} |")
    print(f"\nthe gradient masking alone: {overhead * 1000:.1f} ms per step = {100 * overhead / plain:.1f} % of an "
          f"unmasked step")
    ratio = masked / plain if loaded.device.type == "cuda" else masked_cpu / plain_cpu
    print(f"{args.repeats} × {steps} timed steps per variant after one warm-up step each; masked / unmasked = "
          f"{ratio:.3f} ({'wall' if loaded.device.type == 'cuda' else 'CPU'} time; target ≤ 1.1); every masked "
          "weight still 0")


if __name__ == "__main__":
    main()
