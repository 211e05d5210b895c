"""Masked training speed: steps per second of a forward+backward through a BERT-base-shaped model
with 32×32 block scores attached (weights frozen, gradients to the scores) against a plain
forward+backward of the same model (gradients to the weights); and the memory the scores take.

    python bench/prune_bench.py [--steps 5] [--batch 16] [--tokens 32] [--block 32] [--device auto]
"""

from __future__ import annotations

import time

import torch

from common import bench_parser, load_bench_model, machine_line

from bias_lab.forward import frozen_parameters
from bias_lab.pruning.layout import parse_block
from bias_lab.pruning.masks import Scores


def step_time(loaded, batch, steps: int, step) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--block", default="32")
    args = parser.parse_args()
    loaded = load_bench_model(args)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.tokens), generator=generator).to(loaded.device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    print(machine_line(loaded.device))
    print(f"model: BERT-base shape, random weights; batch {args.batch} × {args.tokens} tokens; masked-LM loss")

    def plain_step():
        loaded.model.zero_grad(set_to_none=True)
        loaded.model(**batch, labels=ids).loss.backward()

    plain = step_time(loaded, batch, args.steps, plain_step)
    scores = Scores(loaded, parse_block(args.block))
    scores.threshold = 0.05
    with frozen_parameters(loaded.model), scores.attached():
        def masked_step():
            scores.zero_grad(set_to_none=True)
            loaded.model(**batch, labels=ids).loss.backward()

        masked = step_time(loaded, batch, args.steps, masked_step)
    score_bytes = sum(p.numel() * p.element_size() for p in scores.parameters())
    weight_bytes = sum(s.module.weight.numel() * s.module.weight.element_size() for s in scores.sites)
    print()
    print("| step | seconds/step | steps/s |")
    print("|---|---|---|")
    print(f"| unmasked forward+backward (weight gradients) | {plain:.3f} | {1 / plain:.2f} |")
    print(f"| masked forward+backward ({args.block}×{args.block} block scores, weights frozen) | {masked:.3f} | {1 / masked:.2f} |")
    print()
    print(f"overhead masked / unmasked = {masked / plain:.2f}×; scores take {score_bytes / 2**10:.1f} KiB "
          f"({100 * score_bytes / weight_bytes:.3f} % of the {weight_bytes / 2**20:.0f} MiB of pruned weights)")


if __name__ == "__main__":
    main()
