"""Mutations of the evaluation metrics (SEAT, WinoBias, CrowS-Pairs, StereoSet) and of the bias
reductions (the metric table, bias_lab/metrics.py), each caught by an oracle in
``tests/test_oracles_evaluation.py``."""

from tests.mutations.harness import Mutation

T = "tests/test_oracles_evaluation.py::"

SEAT_EMBED = T + "test_seat_embed_pools_real_tokens_only"
SEAT_HAND = T + "test_seat_effect_size_p_value_and_mean_abs_by_hand"
WINOBIAS = T + "test_winobias_planted_preference_for_he"
CROWS = T + "test_crows_variants_by_hand"
STEREOSET_INTER = T + "test_causal_stereoset_intersentence_conditions_on_the_context"
BIAS_METRIC = T + "test_bias_metric_reductions_by_hand"
PERF_METRIC = T + "test_perf_metric_stereoset_lms_by_hand"
IG2_GAP = T + "test_ig2_gap_metric_is_mean_absolute_gap_by_hand"
RECORD = T + "test_record_bias_of_and_headline_by_hand"

MUTATIONS = [
    # 1. SEAT sentence embeddings
    Mutation(
        "seat-mean-pools-padding", "bias_lab/evaluation/seat.py",
        "pooled = (states * mask[None, :, :, None]).sum(dim=2) / mask.sum(dim=1)[None, :, None]",
        "pooled = states.mean(dim=2)",
        (SEAT_EMBED,),
        "SEAT mean pooling averages over the padding tokens of a batch too"),
    Mutation(
        "seat-last-takes-padded-position", "bias_lab/evaluation/seat.py",
        "pooled = states[:, torch.arange(states.shape[1]), last]",
        "pooled = states[:, :, -1]",
        (SEAT_EMBED,),
        "SEAT 'last' pooling reads the batch's last position, a padding token for shorter sentences"),
    Mutation(
        "seat-cls-takes-second-token", "bias_lab/evaluation/seat.py",
        "pooled = states[:, :, 0]",
        "pooled = states[:, :, 1]",
        (SEAT_EMBED,),
        "SEAT 'cls' pooling reads the first word instead of [CLS]"),
    Mutation(
        "seat-rows-in-length-order", "bias_lab/evaluation/seat.py",
        "        result[:, rows] = pooled",
        "        result[:, sorted(rows)] = pooled",
        (SEAT_EMBED,),
        "SEAT embeddings come back in length order, not in the caller's order"),
    Mutation(
        "seat-mean-abs-effect-drops-abs", "bias_lab/evaluation/seat.py",
        'effects = [abs(t["effect_size"]) for t in summary["tests"].values()]',
        'effects = [t["effect_size"] for t in summary["tests"].values()]',
        (SEAT_HAND,),
        "SEAT's mean |effect size| averages signed effect sizes, so opposite biases cancel"),
    # 2. WinoBias
    Mutation(
        "winobias-pro-anti-swapped", "bias_lab/evaluation/winobias.py",
        'CrowsPair(p.id, p.pro, p.anti, "stereo", f"type{p.type}")',
        'CrowsPair(p.id, p.anti, p.pro, "stereo", f"type{p.type}")',
        (WINOBIAS,),
        "WinoBias scores the anti-stereotyped sentence as the pro one: the preference is reported as 100 − itself"),
    Mutation(
        "winobias-masked-scores-shared-tokens", "bias_lab/evaluation/winobias.py",
        'variant = "modified" if loaded.kind == "masked" else "shared"',
        'variant = "shared"',
        (WINOBIAS,),
        "WinoBias on a masked LM scores the tokens the sentences share instead of the pronoun"),
    # 3. CrowS-Pairs
    Mutation(
        "crows-modified-computed-as-shared", "bias_lab/evaluation/crows.py",
        'if variant == "modified":',
        'if variant == "modified-never":',
        (CROWS,),
        "CrowS-Pairs variant='modified' silently scores the shared tokens"),
    Mutation(
        "crows-scores-cls-and-sep", "bias_lab/evaluation/crows.py",
        "if position == 0 or position == len(ids) - 1:",
        "if position < 0:",
        (CROWS,),
        "CrowS-Pairs pseudo-log-likelihood includes [CLS]/[SEP] (<s>/</s>)"),
    # 4. StereoSet causal intersentence
    Mutation(
        "stereoset-causal-intersentence-ignores-context", "bias_lab/evaluation/stereoset.py",
        '_causal_query(loaded, r["sentence"], r["context"])',
        '_causal_query(loaded, r["sentence"])',
        (STEREOSET_INTER,),
        "causal StereoSet intersentence scores the sentence without its context"),
    Mutation(
        "stereoset-causal-context-prefix-dropped", "bias_lab/evaluation/stereoset.py",
        "prefix = (bos_id(loaded),) if context is None else (bos_id(loaded),) + tuple(tokenizer.encode(context))",
        "prefix = (bos_id(loaded),)",
        (STEREOSET_INTER,),
        "the causal StereoSet query conditions on BOS only, dropping the context tokens"),
    Mutation(
        "stereoset-causal-score-is-product", "bias_lab/evaluation/stereoset.py",
        'row["score"] = float(2 ** np.mean(log_probs / np.log(2)))',
        'row["score"] = float(2 ** np.sum(log_probs / np.log(2)))',
        (STEREOSET_INTER,),
        "causal StereoSet score is the sentence probability, not the per-token geometric mean (length-biased)"),
    # 9. Bias and performance reductions: the metric table (bias_lab/metrics.py), read by head scoring
    #    and by stored evaluations alike — each mutation must be caught by both oracles.
    Mutation(
        "metrics-stereoset-bias-no-abs", "bias_lab/metrics.py",
        'reduce=lambda s: _abs_from_50(_stereoset_intra(s)["ss"])',
        'reduce=lambda s: _stereoset_intra(s)["ss"] - 50',
        (BIAS_METRIC, RECORD),
        "the StereoSet bias metric is SS − 50, negative (\"better than unbiased\") for SS < 50"),
    Mutation(
        "metrics-stereoset-bias-intersentence", "bias_lab/metrics.py",
        'reduce=lambda s: _abs_from_50(_stereoset_intra(s)["ss"])',
        'reduce=lambda s: _abs_from_50(s["intersentence"]["overall"]["ss"])',
        (BIAS_METRIC, RECORD),
        "the StereoSet bias metric reads the intersentence task"),
    Mutation(
        "metrics-crows-bias-no-abs", "bias_lab/metrics.py",
        'reduce=lambda s: _abs_from_50(s["overall"]["metric"])',
        'reduce=lambda s: s["overall"]["metric"] - 50',
        (BIAS_METRIC, RECORD),
        "the CrowS bias metric is metric − 50 without abs"),
    Mutation(
        "metrics-seat-bias-first-test", "bias_lab/metrics.py",
        'reduce=lambda s: s["mean_abs_effect_size"]',
        'reduce=lambda s: abs(next(iter(s["tests"].values()))["effect_size"])',
        (BIAS_METRIC, RECORD),
        "the SEAT bias metric reads the first test only"),
    Mutation(
        "metrics-winobias-bias-no-abs", "bias_lab/metrics.py",
        'reduce=lambda s: _abs_from_50(s["overall"]["preference"])',
        'reduce=lambda s: s["overall"]["preference"] - 50',
        (BIAS_METRIC, RECORD),
        "the WinoBias bias metric is preference − 50 without abs"),
    Mutation(
        "metrics-ig2-gap-sum", "bias_lab/evaluation/ig2_gap.py",
        'return {"mean_gap": float(gaps.mean()), "prompts": len(prepared)}, items',
        'return {"mean_gap": float(gaps.sum()), "prompts": len(prepared)}, items',
        (IG2_GAP,),
        "the ig2-gap metric sums the gaps (grows with the number of prompts)"),
    Mutation(
        "neurons-gap-signed", "bias_lab/neurons/verification.py",
        "return (probabilities[:, 0] - probabilities[:, 1]).abs()",
        "return probabilities[:, 0] - probabilities[:, 1]",
        (IG2_GAP,),
        "the ig2 gap is signed: gaps in opposite directions cancel in the mean"),
    Mutation(
        "metrics-perf-stereoset-lms-not-inverted", "bias_lab/metrics.py",
        'reduce=lambda s: 100 - _stereoset_intra(s)["lms"]',
        'reduce=lambda s: _stereoset_intra(s)["lms"]',
        (PERF_METRIC, RECORD),
        "stereoset-lms performance is LMS itself, so higher (worse) means a better model"),
    Mutation(
        "metrics-headline-drops-a-role", "bias_lab/metrics.py",
        "    for role in ROLES:\n        found = metric_of(benchmark_name, role)\n        if found is not None:\n            flat[role]",
        "    for role in ROLES[:1]:\n        found = metric_of(benchmark_name, role)\n        if found is not None:\n            flat[role]",
        (RECORD,),
        "a stored StereoSet run has no performance number (only the bias role is reduced)"),
]
