"""IG2 speed: prompts per second of the reference engine, the fast engine, and the original code's
cost pattern (inputs padded to 128 tokens, d1 and d2 attributed in separate runs), on a
BERT-base-shaped model with random weights, prompts of 12–16 tokens. Also the steps in between,
to show what each optimisation buys. Every variant's outputs (scores, P(d1), P(d2), gap, zeroed
targets, convergence deltas) are checked against the reference engine's on the prompts it is timed
on; the benchmark exits non-zero, naming the variant and the column, where one differs beyond
float32 tolerance. The slow original pattern runs on the first --pattern-prompts only on a CPU.

    python bench/ig2_bench.py [--prompts 6] [--pattern-prompts N] [--steps 20] [--device auto]
"""

from __future__ import annotations

import time

import torch

from common import bench_parser, check_close, check_equal, load_bench_model, machine_line, timed

from bias_lab.neurons import IG2Settings, attribute_ig2, reference_attribution
from bias_lab.forward import frozen_parameters
from bias_lab.neurons.prompts import ig2_prompts, prepare_prompts


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


# Tolerances of the checks against the reference engine. Every variant runs float32 passes of other
# batch shapes, padding and summation orders, which agree to ~1e-6 relative on a CPU and ~2e-5 on an
# H100 (bench/RESULTS.md); 1e-4 leaves room for that and still catches a wrong row, layer or sign.
SCORE_RTOL = 1e-4  # attribution scores: relative to the largest |score| of the same layer and prompt
PROBABILITY_RTOL = 1e-4  # P(d1), P(d2): relative; the gap, a difference of close numbers: of max(P(d1), P(d2))
TARGET_RTOL = 1e-4  # target with a layer's activation zeroed: of max(|itself|, P(d1), P(d2))
DELTA_RTOL = 1e-4  # convergence deltas Σ scores − (target − zeroed): of the sizes of those three parts


def check_attributions(name: str, results, reference) -> float:
    """Exit unless one variant's attributions equal the reference engine's on the same prompts:
    scores, P(d1), P(d2), the gap, the zeroed targets and the per-layer convergence deltas. Returns
    the worst score difference relative to its layer's largest score."""
    check_equal(name, "prompt id", [r.prompt.id for r in results], [r.prompt.id for r in reference])
    scores = torch.stack([r.scores.double().cpu() for r in reference])  # [prompts, layers, neurons]
    layer_size = scores.abs().amax(dim=2, keepdim=True)
    worst = check_close(name, "scores", torch.stack([r.scores for r in results]), scores, SCORE_RTOL,
                        scale=layer_size)
    p1 = torch.tensor([r.p_d1 for r in reference], dtype=torch.float64)
    p2 = torch.tensor([r.p_d2 for r in reference], dtype=torch.float64)
    check_close(name, "P(d1)", [r.p_d1 for r in results], p1, PROBABILITY_RTOL)
    check_close(name, "P(d2)", [r.p_d2 for r in results], p2, PROBABILITY_RTOL)
    check_close(name, "gap", [r.gap for r in results], [r.gap for r in reference], PROBABILITY_RTOL,
                scale=torch.maximum(p1, p2))
    zeroed = torch.stack([r.target_zeroed.double().cpu() for r in reference])  # [prompts, layers]
    check_close(name, "target with the layer zeroed", torch.stack([r.target_zeroed for r in results]), zeroed,
                TARGET_RTOL, scale=torch.maximum(zeroed.abs(), torch.maximum(p1, p2)[:, None]))
    largest = torch.maximum(p1, p2)[:, None]  # [prompts, 1]
    check_close(name, "convergence deltas", torch.stack([r.deltas for r in results]),
                torch.stack([r.deltas.double().cpu() for r in reference]), DELTA_RTOL,
                scale=scores.abs().sum(dim=2) + largest + torch.maximum(zeroed.abs(), largest))
    return worst


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--pattern-prompts", type=int, default=None,
                        help="prompts the original pattern is timed and checked on (default: all on a GPU, "
                             "1 on a CPU, where it is ~45× slower than the fast engine)")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    loaded = load_bench_model(args)
    candidates = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male")).prompts
    prompts = [p for p in candidates if 12 <= len(loaded.tokenizer(p.text)["input_ids"]) <= 16][: args.prompts]
    if not prompts:
        raise SystemExit("no IG2 prompt of 12–16 tokens: pass --prompts 1 or more")
    lengths = [len(loaded.tokenizer(p.text)["input_ids"]) for p in prompts]
    on_accelerator = loaded.device.type in ("cuda", "mps")
    pattern_count = args.pattern_prompts if args.pattern_prompts is not None else (len(prompts) if on_accelerator else 1)
    pattern_count = max(1, min(pattern_count, len(prompts)))
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

    # Each variant is timed on the prompts it is checked on: all of them, except the original pattern,
    # which a CPU runs on the first --pattern-prompts only (its table row says so).
    variants = [
        ("original pattern: padded to 128, d1 and d2 in two runs", pattern_count,
         lambda: run_reference_variant(pattern_count, pad_to=128, separate_demographics=True)),
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
        if name.startswith("reference"):
            seconds, results, difference = reference_s, reference, 0.0
        else:
            seconds, results = timed(function)
            difference = check_attributions(name, results, reference[:count])
        rows.append((name, count, seconds, count / seconds, difference))
    reference_rate = rows[1][3]
    pattern_rate = rows[0][3]
    fast_rate = rows[-1][3]
    print()
    print("| variant | prompts | seconds | prompts/s | × reference | × original pattern | max rel. diff vs reference "
          "| timed and checked on |")
    print("|---|---|---|---|---|---|---|---|")
    for name, count, seconds, rate, difference in rows:
        if count == len(prompts):
            subset = f"all {count} prompts"
        else:
            subset = (f"first {count} of {len(prompts)} prompts ({fast_rate / rate:.0f}× slower per prompt than fast; "
                      f"--pattern-prompts to change)")
        print(f"| {name} | {count} | {seconds:.1f} | {rate:.3f} | {rate / reference_rate:.2f} | "
              f"{rate / pattern_rate:.1f} | {difference:.1e} | {subset} |")
    print()
    print(f"every variant equals the reference engine on its prompts: scores within {SCORE_RTOL:g} of each layer's "
          f"largest, P(d1), P(d2), gap, zeroed targets and convergence deltas within {PROBABILITY_RTOL:g} relative")
    print(f"fast / reference = {fast_rate / reference_rate:.2f}×   fast / original pattern = {fast_rate / pattern_rate:.1f}×"
          f" (prompts per second)")
    print(f"one JUT (1700 prompts) with the fast engine: {1700 / fast_rate / 60:.0f} min")
    peak = peak_matmul_flops(loaded.device)
    needed = ig2_flops(sum(lengths) / len(lengths), 12, 768, 3072, 30522, args.steps)
    floor_rate = peak / needed
    print(f"FLOP floor: {needed / 1e9:.0f} GFLOP per prompt at the {peak / 1e9:.0f} GFLOP/s of a large matmul here "
          f"→ {floor_rate:.3f} prompts/s; fast reaches {fast_rate / floor_rate:.0%} of it")


if __name__ == "__main__":
    main()
