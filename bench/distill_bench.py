"""Distillation speed: one distillation step (the 12-layer BERT-base-shaped teacher's forward, the
6-layer student's forward and backward, the KL over the vocabulary, the optimizer step) against a
plain training step of the same student alone (its MLM forward, backward and optimizer step).

Counting layer passes, the teacher's 12-layer forward adds 12 to the student's 6 forward + 12
backward: a floor of 30/18 = 1.67×; the target is ≤ 1.8×. The teacher's LM head runs only where
the loss reads it (every token by default; ``--kl-positions masked`` also timed).

    python bench/distill_bench.py [--steps 3] [--batch 8] [--tokens 128] [--device auto]
"""

from __future__ import annotations

import statistics
import time

import torch

from common import bench_parser, load_bench_model, machine_line

from bias_lab.compression.corpus import mask_tokens
from bias_lab.compression.distill import DistillSettings, micro_step_loss
from bias_lab.compression.student import build_student, evenly_spread


def interleaved_seconds(device: torch.device, rounds: int, steps: dict) -> dict[str, float]:
    """The median seconds of each step, timed in turns (one of each per round, after a warm-up
    round), so that a machine whose load drifts during the run slows every variant alike."""
    times = {name: [] for name in steps}
    for round_ in range(rounds + 1):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--steps", type=int, default=3, help="timed rounds (one step of each kind per round)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    teacher = load_bench_model(args)
    device = teacher.device
    layers = evenly_spread(teacher.num_layers, 6)
    student = build_student(teacher, layers)
    optimizer = torch.optim.AdamW(student.parameters(), lr=5e-4, eps=1e-6)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.tokens), generator=generator)
    ids[:, 0], ids[:, -1] = teacher.tokenizer.cls_token_id, teacher.tokenizer.sep_token_id
    print(machine_line(device))
    print(f"teacher: BERT-base shape (12 layers), random weights; student: layers {','.join(map(str, layers))}; "
          f"batch {args.batch} × {args.tokens} tokens; bf16 autocast on CUDA")
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))

    def plain_step():
        inputs, labels = mask_tokens(ids, teacher.tokenizer, torch.Generator().manual_seed(1))
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = student(input_ids=inputs.to(device), attention_mask=torch.ones_like(inputs).to(device),
                           labels=labels.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 5.0)
        optimizer.step()

    def distill_step(settings):
        def step():
            optimizer.zero_grad(set_to_none=True)
            micro_step_loss(teacher, student, ids, settings, torch.Generator().manual_seed(1))["loss"].backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 5.0)
            optimizer.step()
        return step

    seconds = interleaved_seconds(device, args.steps, {
        "plain": plain_step, "every": distill_step(DistillSettings(steps=1)),
        "masked": distill_step(DistillSettings(steps=1, kl_positions="masked"))})
    plain, every, masked = seconds["plain"], seconds["every"], seconds["masked"]
    print()
    print("| step | seconds/step | steps/s | × plain |")
    print("|---|---|---|---|")
    print(f"| plain student training step (MLM) | {plain:.3f} | {1 / plain:.2f} | 1.00 |")
    print(f"| distillation step, KL at every token (default) | {every:.3f} | {1 / every:.2f} | **{every / plain:.2f}** |")
    print(f"| distillation step, KL at the masked tokens | {masked:.3f} | {1 / masked:.2f} | **{masked / plain:.2f}** |")
    print()
    print(f"overhead of distillation = {every / plain:.2f}× (floor 1.67×, target ≤ 1.8×); "
          f"{masked / plain:.2f}× with the LM heads at the masked tokens only")


if __name__ == "__main__":
    main()
