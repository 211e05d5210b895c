"""IG2 speed: prompts per second of the reference engine, the fast engine, and the original code's
cost pattern (inputs padded to 128 tokens, d1 and d2 attributed in separate runs), on a
BERT-base-shaped model with random weights, prompts of 12–16 tokens. Also the steps in between,
to show what each optimisation buys. Every variant's attributions are checked against the
reference engine's.

    python bench/ig2_bench.py [--prompts 6] [--pattern-prompts 1] [--steps 20] [--device auto]
"""

from __future__ import annotations

import time

import torch

from common import bench_parser, load_bench_model, machine_line, timed

from bias_lab.attribution import IG2Settings, attribute_ig2, reference_attribution
from bias_lab.forward import frozen_parameters
from bias_lab.prompts import ig2_prompts, prepare_prompts


def peak_matmul_flops(device: torch.device) -> float:
    """FLOP/s of a large float32 matrix product of the model's shapes: the machine's ceiling here."""
    a = torch.randn(4096, 768, device=device)
    b = torch.randn(768, 3072, device=device)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * 2 * 4096 * 768 * 3072 / (time.perf_counter() - start)


def ig2_flops(tokens: float, layers: int, hidden: int, ffn: int, vocab: int, steps: int) -> float:
    """Floating-point operations the fast engine's algorithm needs for one prompt: the scaled rows of
    layer l through layers l..L−1 and back, the mask-position LM head, the cache and α=0 passes."""
    per_token_layer = 4 * hidden * hidden + 2 * hidden * ffn + 2 * tokens * hidden
    head = hidden * hidden + hidden * vocab
    layer_passes = sum(layers - l for l in range(layers))
    scaled = steps * (tokens * per_token_layer * layer_passes + layers * head)
    cache = tokens * per_token_layer * layers + head
    zero = tokens * per_token_layer * layer_passes + layers * head
    return 2 * (2 * scaled + cache + zero)  # multiply-adds → FLOPs; backward ≈ forward


def max_relative_difference(results, reference) -> float:
    worst = 0.0
    for got, ref in zip(results, reference):
        scale = ref.scores.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
        worst = max(worst, float(((got.scores - ref.scores).abs() / scale).max()))
    return worst


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--pattern-prompts", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    loaded = load_bench_model(args)
    candidates = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male")).prompts
    prompts = [p for p in candidates if 12 <= len(loaded.tokenizer(p.text)["input_ids"]) <= 16][: args.prompts]
    lengths = [len(loaded.tokenizer(p.text)["input_ids"]) for p in prompts]
    settings = IG2Settings(steps=args.steps)
    torch.set_grad_enabled(True)
    print(machine_line(loaded.device))
    print(f"model: BERT-base shape (12 layers, 768 hidden, 3072 FFN, 30522 vocab), random weights; "
          f"{len(prompts)} prompts of {min(lengths)}–{max(lengths)} tokens; m = {args.steps}")

    attribute_ig2(loaded, prompts[:1], IG2Settings(steps=2))  # warm-up
    reference_s, reference = timed(lambda: attribute_ig2(loaded, prompts, IG2Settings(steps=args.steps, engine="reference")))

    def run_reference_variant(count, **options):
        with loaded.lock, frozen_parameters(loaded.model):
            return [reference_attribution(loaded, p, settings, **options) for p in prompts[:count]]

    variants = [
        ("original pattern: padded to 128, d1 and d2 in two runs", args.pattern_prompts,
         lambda: run_reference_variant(args.pattern_prompts, pad_to=128, separate_demographics=True)),
        ("reference (no padding, both demographics in one pass)", len(prompts), lambda: reference),
        ("+ LM head at the mask only", len(prompts), lambda: run_reference_variant(len(prompts), head_at_mask_only=True)),
        ("+ cached lower layers, one layer per pass", len(prompts),
         lambda: attribute_ig2(loaded, prompts, IG2Settings(steps=args.steps, batch_size=args.steps))),
        ("+ all layers of a prompt in one pass", len(prompts),
         lambda: attribute_ig2(loaded, prompts, IG2Settings(steps=args.steps, batch_size=args.steps * 12))),
        ("fast (auto pass size: here one prompt of all layers per pass; more prompts on GPUs and small models)", len(prompts),
         lambda: attribute_ig2(loaded, prompts, settings)),
    ]
    rows = []
    for name, count, function in variants:
        seconds, results = (reference_s, reference) if name.startswith("reference") else timed(function)
        rate = count / seconds
        rows.append((name, count, seconds, rate, max_relative_difference(results, reference[:count])))
    reference_rate = rows[1][3]
    pattern_rate = rows[0][3]
    print()
    print("| variant | prompts | seconds | prompts/s | × reference | × original pattern | max rel. diff vs reference |")
    print("|---|---|---|---|---|---|---|")
    for name, count, seconds, rate, difference in rows:
        print(f"| {name} | {count} | {seconds:.1f} | {rate:.3f} | {rate / reference_rate:.2f} | "
              f"{rate / pattern_rate:.1f} | {difference:.1e} |")
    fast_rate = rows[-1][3]
    print()
    print(f"fast / reference = {fast_rate / reference_rate:.2f}×   fast / original pattern = {fast_rate / pattern_rate:.1f}×")
    print(f"one JUT (1700 prompts) with the fast engine: {1700 / fast_rate / 60:.0f} min")
    peak = peak_matmul_flops(loaded.device)
    needed = ig2_flops(sum(lengths) / len(lengths), 12, 768, 3072, 30522, args.steps)
    floor_rate = peak / needed
    print(f"FLOP floor: {needed / 1e9:.0f} GFLOP per prompt at the {peak / 1e9:.0f} GFLOP/s of a large matmul here "
          f"→ {floor_rate:.3f} prompts/s; fast reaches {fast_rate / floor_rate:.0%} of it")


if __name__ == "__main__":
    main()
