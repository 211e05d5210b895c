"""Generation + toxicity scoring speed: HolisticBias-style prompts continued by a GPT-2-shaped random
model (12 layers × 768, 12 heads, FFN 3072; the tiny byte-level BPE vocabulary, so the LM head is
smaller than GPT-2's) and scored by a BERT-base-shaped random classifier — batched (left-padded,
key/value cache, the classifier in length-sorted batches) against one prompt at a time, on the
same prompts; the texts and scores must be identical. Then the cost of a toxicity-gap head scan:
one layer's heads scored one generation per head, and all of the layer's heads in one generation
whose rows carry different ablations (values checked equal).

    python bench/generation_bench.py [--prompts 256] [--baseline-prompts 64] [--scan-prompts 32] [--device auto]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from common import SHARED, bench_parser, check_close, check_equal, machine_line, timed

from bias_lab.generation import GenerationSettings, generate
from bias_lab.heads.ablation import score_heads
from bias_lab.heads.metrics import bias_metric
from bias_lab.interventions import HeadAblation, InterventionSpec
from bias_lab.models import load_model
from bias_lab.tiny import build_tiny_model
from bias_lab.toxicity import ToxicityScorer, scored_text

HOLISTIC = SHARED / "data" / "holistic_bias" / "v1.0"


def prompts(count: int) -> list:
    """HolisticBias sentences of FASP's axes (a seeded sample), or look-alikes without ../shared."""
    if HOLISTIC.is_dir():
        from bias_lab.data.groups import load_holistic_bias

        return load_holistic_bias(HOLISTIC, axes=("gender_and_sex", "race_ethnicity"), sample=count, seed=0)
    words = ["young", "old", "tall", "Deaf", "Catholic", "Asian", "gay", "blind"]
    nouns = [("woman", "women"), ("man", "men")]
    return [{"id": f"p{i}", "prompt": f"I'm a {words[i % 8]} {nouns[i % 2][0]}.", "group": nouns[i % 2][1],
             "axis": "gender"} for i in range(count)]


def build(folder: Path) -> tuple[Path, Path]:
    lm, classifier = folder / "gpt2-shape", folder / "classifier"
    if not (lm / "config.json").is_file():
        build_tiny_model("gpt2", lm, layers=12, hidden=768, heads=12, ffn=3072)
    if not (classifier / "config.json").is_file():
        build_tiny_model("bert", classifier, kind="classifier", layers=12, hidden=768, heads=12, ffn=3072,
                         labels=("toxicity", "insult"), problem_type="multi_label_classification")
    return lm, classifier


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--baseline-prompts", type=int, default=64, help="prompts timed one at a time")
    parser.add_argument("--scan-prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args()
    lm_folder, classifier_folder = build(args.model_dir or Path(tempfile.mkdtemp()))
    loaded = load_model(lm_folder, device=args.device)
    scorer = ToxicityScorer.load(classifier_folder, device=loaded.device)
    one_by_one = ToxicityScorer.load(classifier_folder, device=loaded.device, batch_size=1)
    items = prompts(args.prompts)
    subset = items[: args.baseline_prompts]
    print(machine_line(loaded.device))
    print(f"model: GPT-2 shape (12 × 768, 12 heads, FFN 3072), random weights, vocabulary "
          f"{loaded.model.config.vocab_size}; classifier: BERT-base shape; {len(items)} prompts "
          f"({'HolisticBias v1.0 sample' if HOLISTIC.is_dir() else 'look-alike prompts'}), "
          f"{args.max_new_tokens} new tokens, top-k 50 sampling, seed 0")
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)

    def run(batch_size, chosen):
        table = generate(loaded, chosen, GenerationSettings(**{**settings.to_dict(), "batch_size": batch_size}))
        texts = [scored_text(p, c) for p, c in zip(table["prompt"], table["continuation"])]
        return table, (one_by_one if batch_size == 1 else scorer).score(texts)

    single_s, (single, single_scores) = timed(lambda: run(1, subset))
    batched_subset_s, (batched_subset, subset_scores) = timed(lambda: run(None, subset))
    check_equal("batched", "continuations", batched_subset["continuation"], single["continuation"])
    check_close("batched", "toxicity", subset_scores, single_scores, 1e-5, 1e-7)
    batched_s, (batched, _) = timed(lambda: run(None, items))
    check_equal("batched, all prompts", "continuations of the first prompts",
                batched["continuation"][: len(subset)], single["continuation"])
    rate_single, rate_batched = len(subset) / single_s, len(items) / batched_s
    print()
    print("| generation + scoring | prompts | seconds | prompts/s | × one at a time |")
    print("|---|---|---|---|---|")
    print(f"| one prompt at a time (batch 1, classifier batch 1) | {len(subset)} | {single_s:.1f} | "
          f"{rate_single:.2f} | 1.00 |")
    print(f"| batched, the same prompts | {len(subset)} | {batched_subset_s:.1f} | "
          f"{len(subset) / batched_subset_s:.2f} | {single_s / batched_subset_s:.2f} |")
    print(f"| batched, all prompts | {len(items)} | {batched_s:.1f} | {rate_batched:.2f} | "
          f"{rate_batched / rate_single:.2f} |")
    print(f"\nidentical continuations and toxicity (1e-5) on the {len(subset)} prompts timed both ways; "
          f"mean new tokens {batched['new_tokens'].mean():.1f}")
    scan = items[: args.scan_prompts]
    layer, heads = loaded.num_layers - 1, loaded.num_heads
    variants = [[(layer, head)] for head in range(heads)]
    scan_settings = GenerationSettings(**{**settings.to_dict(), "batch_size": None})
    together_s, together = timed(lambda: generate(loaded, scan, scan_settings, head_variants=variants))
    separate_s, separate = timed(lambda: [generate(loaded, scan, scan_settings, intervention=InterventionSpec(
        heads=(HeadAblation(layer, head),))) for head in range(heads)])
    same = np.mean([np.mean(np.asarray(together[together["variant"] == head]["continuation"]) ==
                            np.asarray(separate[head]["continuation"])) for head in range(heads)])
    # Exactly equal on a CPU (tests/test_generation.py); on a GPU another batch shape can round a
    # logit differently and, rarely, flip one sampled token, after which that continuation differs.
    if same < 0.98:
        raise SystemExit(f"CHECK FAILED: row variants: only {same:.1%} of the continuations equal the separate runs'")
    metric = bias_metric(loaded, "toxicity-gap", scan, classifier=scorer, max_new_tokens=args.max_new_tokens)
    one_s, one = timed(lambda: score_heads(loaded, None, metric, layers=[layer], ablations_per_pass=1))
    many_s, many = timed(lambda: score_heads(loaded, None, metric, layers=[layer], ablations_per_pass=heads))
    difference = float(np.max(np.abs(many.table["bias"].to_numpy(float) - one.table["bias"].to_numpy(float))))
    print()
    print(f"toxicity-gap head scan, one layer ({heads} heads) on {len(scan)} prompts:")
    print("| scorer | seconds | heads/s | × one generation per head |")
    print("|---|---|---|---|")
    print(f"| one generation per ablated head | {one_s:.1f} | {heads / one_s:.3f} | 1.00 |")
    print(f"| the layer's {heads} ablations as row variants of one generation | {many_s:.1f} | "
          f"{heads / many_s:.3f} | {one_s / many_s:.2f} |")
    full = loaded.num_layers * heads
    print(f"(each scan includes the unablated baseline; a full scan of {full} heads ≈ "
          f"{full / (heads / many_s) / 60:.1f} min with row variants)")
    print(f"generation alone, {heads} ablations × {len(scan)} prompts: separately {separate_s:.1f} s, as row variants "
          f"{together_s:.1f} s ({separate_s / together_s:.2f}×); {same:.1%} of the continuations identical; "
          f"largest gap difference between the two scans {difference:.1e}")


if __name__ == "__main__":
    main()
