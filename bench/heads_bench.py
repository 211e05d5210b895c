"""Head-ablation speed: all 144 heads of a BERT-base-shaped model scored with the mlm-loss metric
on a fixed text set — the naive loop (one full forward pass per head), cached prefixes (layers below
the ablated one taken from one recorded pass), and cached prefixes with all heads of a layer ablated
in one replicated pass. Every scored column (perf, perf_delta, bias, bias_delta, importance) and
the unablated baseline of each fast scorer are checked against the naive loop's on the same texts;
the benchmark exits non-zero, naming the scorer and the column, where one differs beyond float
tolerance.

    python bench/heads_bench.py [--texts 64] [--device auto] [--model-dir DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import SHARED, bench_parser, check_close, check_equal, load_bench_model, machine_line, timed

from bias_lab.data import load_text
from bias_lab.heads.ablation import score_heads
from bias_lab.heads.metrics import perf_metric


# Tolerance of the checks against the naive loop. The metrics are float32 losses summed in another
# batch shape (the prefix cache, the replicated batch), which agree to float32 rounding (~1e-7
# relative; bit-identical on the CPU and an H100 in bench/RESULTS.md). Deltas and importance are
# differences of two metric values, so they are compared relative to the metric's own size.
METRIC_RTOL = 1e-5  # of |metric| (perf columns: |perf|, bias columns: |bias|, importance: the larger)
METRIC_ATOL = 1e-7  # for metrics at or near 0 (a bias metric of an unbiased model)
SCORED_COLUMNS = ("perf", "perf_delta", "bias", "bias_delta", "importance")


def check_head_scores(name: str, result, naive) -> float:
    """Exit unless a scorer's table and baseline equal the naive loop's: the same (layer, head) rows,
    every scored column present within tolerance (NaN where the naive one is NaN). Returns the worst
    relative difference over the columns."""
    table, want = result.table, naive.table
    check_equal(name, "columns", list(table.columns), list(want.columns))
    check_equal(name, "(layer, head)", zip(table["layer"], table["head"]), zip(want["layer"], want["head"]))
    perf, bias = np.abs(want["perf"].to_numpy(float)), np.abs(want["bias"].to_numpy(float))
    scales = {"perf": perf, "perf_delta": perf, "bias": bias, "bias_delta": bias,
              "importance": np.fmax(np.nan_to_num(perf), np.nan_to_num(bias))}
    worst = 0.0
    for column in SCORED_COLUMNS:
        if column in want.columns:
            worst = max(worst, check_close(name, column, table[column].to_numpy(float), want[column].to_numpy(float),
                                           METRIC_RTOL, METRIC_ATOL, scale=scales[column]))
    for key in ("perf", "bias"):
        worst = max(worst, check_close(name, f"baseline {key}", result.baseline[key], naive.baseline[key],
                                       METRIC_RTOL, METRIC_ATOL))
    return worst


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "wikitext2" / "wiki.valid.tokens")
    args = parser.parse_args()
    loaded = load_bench_model(args)
    if args.data.is_file():
        texts = [t for t in load_text(args.data) if 20 <= len(t.split()) <= 40][: args.texts]
    else:
        from bias_lab.tiny import tiny_corpus

        texts = [" ".join(tiny_corpus(1)[i:i + 4]) for i in range(0, 4 * args.texts, 4)]
    metric = perf_metric(loaded, "mlm-loss", texts, max_length=64)
    heads = loaded.num_layers * loaded.num_heads
    print(machine_line(loaded.device))
    print(f"model: BERT-base shape, random weights; {heads} heads; mlm-loss on "
          f"{len(texts)} texts of 20–40 words (15 % masked, seed 0)")
    # All three scorers score the same heads on the same texts; each fast one is checked right after it runs.
    naive_s, naive = timed(lambda: score_heads(loaded, metric, use_prefix_cache=False, ablations_per_pass=1))
    scorers = [("naive loop: one full forward pass per head", naive_s, naive, 0.0)]
    for name, options in (("cached prefix: layers below the ablated one from one recorded pass",
                           dict(use_prefix_cache=True, ablations_per_pass=1)),
                          (f"cached prefix + the {loaded.num_heads} heads of a layer in one replicated pass",
                           dict(ablations_per_pass=loaded.num_heads))):
        seconds, result = timed(lambda: score_heads(loaded, metric, **options))
        scorers.append((name, seconds, result, check_head_scores(name, result, naive)))
    present = [c for c in SCORED_COLUMNS if not naive.table[c].isna().all()]
    print()
    print("| scorer | seconds | heads/s | × naive | max rel. difference, all columns |")
    print("|---|---|---|---|---|")
    for name, seconds, result, difference in scorers:
        print(f"| {name} | {seconds:.1f} | {heads / seconds:.2f} | {naive_s / seconds:.2f} | {difference:.1e} |")
    print()
    print(f"both fast scorers equal the naive loop on all {heads} heads: {', '.join(present)} and the baseline within "
          f"{METRIC_RTOL:g} relative (+{METRIC_ATOL:g}); the columns without a metric are NaN in all three")
    print(f"fastest / naive = {naive_s / min(s for _, s, _, _ in scorers[1:]):.2f}×")


if __name__ == "__main__":
    main()
