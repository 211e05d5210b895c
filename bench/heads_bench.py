"""Head-ablation speed: all 144 heads of a BERT-base-shaped model scored with the mlm-loss metric
on a fixed text set — the naive loop (one full forward pass per head), cached prefixes (layers below
the ablated one taken from one recorded pass), and cached prefixes with all heads of a layer ablated
in one replicated pass; identical scores checked.

    python bench/heads_bench.py [--texts 64] [--device auto] [--model-dir DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import SHARED, bench_parser, load_bench_model, machine_line, timed

from bias_lab.data import load_text
from bias_lab.heads.ablation import score_heads
from bias_lab.heads.metrics import mlm_loss


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
    metric = mlm_loss(loaded, texts, max_length=64)
    print(machine_line(loaded.device))
    print(f"model: BERT-base shape, random weights; {loaded.num_layers * loaded.num_heads} heads; mlm-loss on "
          f"{len(texts)} texts of 20–40 words (15 % masked, seed 0)")
    naive_s, naive = timed(lambda: score_heads(loaded, metric, use_prefix_cache=False, ablations_per_pass=1))
    cached_s, cached = timed(lambda: score_heads(loaded, metric, use_prefix_cache=True, ablations_per_pass=1))
    batched_s, batched = timed(lambda: score_heads(loaded, metric, ablations_per_pass=loaded.num_heads))
    print()
    print("| scorer | seconds | heads/s | × naive | max abs. score difference |")
    print("|---|---|---|---|---|")
    for name, seconds, result in (("naive loop: one full forward pass per head", naive_s, naive),
                                  ("cached prefix: layers below the ablated one from one recorded pass", cached_s, cached),
                                  ("cached prefix + the 12 heads of a layer in one replicated pass", batched_s, batched)):
        difference = float(np.max(np.abs(result.table["perf"] - naive.table["perf"])))
        print(f"| {name} | {seconds:.1f} | {144 / seconds:.2f} | {naive_s / seconds:.2f} | {difference:.1e} |")
    print()
    print(f"fastest / naive = {naive_s / min(cached_s, batched_s):.2f}×")


if __name__ == "__main__":
    main()
