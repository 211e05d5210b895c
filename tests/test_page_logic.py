"""The library functions the app's pages call instead of computing on the page, against
hand-computed fixtures."""

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
import torch

from .test_evaluation import STEREOSET

# --- run folders and listings ---------------------------------------------------------------------


def test_run_folder_is_named_by_kind_model_and_every_setting(tmp_path):
    from bias_lab.runs import run_folder, run_folder_name
    from bias_lab.store import RunStore

    settings = {"corpus": "/data/my corpus.txt", "lr": 0.01, "block": "head"}
    name = run_folder_name("prune", "org/bert-base uncased", settings, label=["my corpus", "head", "lr0.01"])
    assert re.fullmatch(r"ui-prune-org_bert-base_uncased-my_corpus-head-lr0\.01-[0-9a-f]{8}", name), name
    assert run_folder_name("prune", "org/bert-base uncased", dict(reversed(settings.items())),
                           label=["my corpus", "head", "lr0.01"]) == name  # the order of settings does not matter
    # a setting outside the readable label, another model, another kind: another folder
    assert run_folder_name("prune", "org/bert-base uncased", {**settings, "l1": 0.5},
                           label=["my corpus", "head", "lr0.01"]) != name
    assert run_folder_name("prune", "bert-large", settings, label=["my corpus", "head", "lr0.01"]) != name
    assert run_folder_name("ig2", "org/bert-base uncased", settings, label=["my corpus", "head", "lr0.01"]) != name
    # a local model folder is named by its last part; the hash still tells two such folders apart
    first, second = tmp_path / "a" / "tiny", tmp_path / "b" / "tiny"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    names = [run_folder_name("ig2", str(folder), {"steps": 3}) for folder in (first, second)]
    assert all(n.startswith("ui-ig2-tiny-") for n in names) and names[0] != names[1]
    # long parts keep their end, and the name is always file-name safe
    long = run_folder_name("ig2", "x" * 100 + "/model", {}, label=["é" * 3 + "a b" * 30])
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", long) and "x_model-" in long and "x" * 41 not in long
    assert run_folder("ig2", "m", {"steps": 3}, store=RunStore(tmp_path / "home")) == \
        tmp_path / "home" / "runs" / run_folder_name("ig2", "m", {"steps": 3})


def test_run_listing_labels_and_the_default_second_run():
    from bias_lab.runs import other_run_index, run_choices, run_kinds, run_label, runs_table
    from bias_lab.store import RunStore

    store = RunStore()
    ids = []
    for model, prompts in (("m1", 4), ("m1", 5), ("m2", 6)):
        run = store.start("ig2", {"steps": 3, "prompts": prompts}, model=model)
        run.complete({"prompts": prompts, "mean_gap": 0.5})
        ids.append(run.id)
    failed = store.start("heads", {"perf": "mlm-loss"}, model="m1")
    failed.fail("boom")
    table = runs_table(store)
    assert list(table.columns[:3]) == ["id", "kind", "what"]
    what = dict(zip(table["id"], table["what"]))
    assert "4 prompts" in what[ids[0]] and "mean gap 0.5" in what[ids[0]] and what[failed.id] == "failed: boom"
    assert runs_table(store, kind="heads")["id"].tolist() == [failed.id]
    assert runs_table(store, status="running").empty and "what" in runs_table(store, status="running").columns
    assert run_kinds(store) == ["heads", "ig2"]
    choices = run_choices(store, [ids[0], "unknown"])
    assert choices[ids[0]].startswith(f"{ids[0]} · ig2 · m1 · ") and choices["unknown"] == "unknown"
    records = store.list(kind="ig2")
    record = next(r for r in records if r.id == ids[0])
    assert run_label(record).startswith("ig2 · m1 · ") and run_label(record).endswith(f" · {ids[0]}")
    assert run_label(record, kind=False).startswith("m1 · ")
    assert re.search(r" · \d{4}-\d\d-\d\d \d\d:\d\d · " + ids[0] + "$", run_label(record, created=True))
    # another run than the first, of another model when there is one
    assert records[other_run_index(records, record)].model == "m2"
    same_model = [r for r in records if r.model == "m1"]
    assert same_model[other_run_index(same_model, same_model[0])].id == same_model[1].id
    assert other_run_index(records[:1], records[0]) == 0


# --- bias neurons ---------------------------------------------------------------------------------

SCORES = torch.tensor([  # 2 prompts × 2 layers × 3 neurons
    [[1.0, 0.0, 4.0], [2.0, -1.0, 0.0]],
    [[3.0, 2.0, 0.0], [2.0, 5.0, 2.0]],
])
# mean over the prompts: [[2, 1, 2], [2, 2, 1]]


def test_mean_scores_and_top_neurons_by_hand():
    from bias_lab.errors import BiasLabError
    from bias_lab.neurons.analyses import mean_scores, top_neurons

    assert mean_scores(SCORES).tolist() == [[2.0, 1.0, 2.0], [2.0, 2.0, 1.0]]
    assert mean_scores(SCORES.numpy()).tolist() == mean_scores(SCORES).tolist()
    top = top_neurons(SCORES, 5)
    assert list(top.columns) == ["layer", "neuron", "mean_score"]
    # four neurons share the highest mean 2: the lower layer, then the lower neuron first
    assert top[["layer", "neuron"]].values.tolist() == [[0, 0], [0, 2], [1, 0], [1, 1], [0, 1]]
    assert top["mean_score"].tolist() == [2.0, 2.0, 2.0, 2.0, 1.0]
    assert len(top_neurons(SCORES, 20)) == 6
    distinct = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)  # the highest is layer 2, neuron 3
    assert top_neurons(distinct, 2)[["layer", "neuron"]].values.tolist() == [[2, 3], [2, 2]]
    with pytest.raises(BiasLabError, match="prompts, layers, neurons"):
        mean_scores(torch.zeros(2, 3))


def test_convergence_deltas_by_hand():
    from bias_lab.neurons.analyses import convergence_deltas

    prompts = pd.DataFrame({"prompt": ["a", "b"], "delta_l10": [1.0, 3.0], "delta_l0": [-1.0, 0.5],
                            "delta_l2": [0.0, -2.0], "gap": [0.3, 0.1], "other_delta_l1": [9.0, 9.0]})
    deltas = convergence_deltas(prompts)
    assert deltas["layer"].tolist() == [0, 2, 10]  # by layer number, not by column text
    assert deltas["mean_abs_delta"].tolist() == pytest.approx([0.75, 1.0, 2.0])


def test_neuron_overlap_by_hand():
    from bias_lab.neurons.analyses import neuron_overlap

    first = pd.DataFrame({"jut": ["a", "b", "a"], "layer": [0, 0, 1], "neuron": [3, 3, 7]})  # {(0,3), (1,7)}
    second = pd.DataFrame({"jut": ["c", "c", "c"], "layer": [1, 2, 0], "neuron": [7, 1, 4]})  # 3 neurons
    overlap = neuron_overlap(first, second)
    assert (overlap.shared, overlap.union, overlap.first, overlap.second) == (1, 4, 2, 3)
    assert overlap.jaccard == pytest.approx(0.25)
    empty = pd.DataFrame({"layer": [], "neuron": []})
    nothing = neuron_overlap(empty, empty)
    assert (nothing.shared, nothing.union, nothing.jaccard) == (0, 0, None)


def test_random_neurons_keep_the_count_and_fit_the_model(tiny_loaded):
    from bias_lab.neurons.live import format_neurons, listed_neurons, parse_neurons, random_neuron_text

    loaded = tiny_loaded("bert")
    assert listed_neurons("1:3, 1:5;0:2,, ") == 3 and listed_neurons("") == 0
    assert format_neurons([(1, 3), (0, 12)]) == "1:3, 0:12"
    drawn = random_neuron_text(loaded, "1:3, 1:5, 0:1", 0)
    spec = parse_neurons(drawn)
    assert len(spec.neurons) == 3 and len({(e.layer, e.neuron) for e in spec.neurons}) == 3
    spec.validate(loaded)
    assert random_neuron_text(loaded, "1:3, 1:5, 0:1", 0) == drawn  # a draw is reproducible
    assert random_neuron_text(loaded, "1:3, 1:5, 0:1", 1) != drawn  # the next draw is another
    assert len(parse_neurons(random_neuron_text(loaded, "", 0)).neurons) == 1  # at least one
    # the same neurons the verification's random baseline draws with that seed
    flat = torch.randperm(loaded.num_layers * loaded.ffn_width, generator=torch.Generator().manual_seed(0))[:3]
    assert drawn == ", ".join(f"{i // loaded.ffn_width}:{i % loaded.ffn_width}" for i in flat.tolist())


def test_prediction_table_holds_the_exact_numbers():
    from bias_lab.neurons.live import MaskPrediction, prediction_table

    before = MaskPrediction(pd.DataFrame(), 0.25, 0.125)
    after = MaskPrediction(pd.DataFrame(), 1e-7, 3e-7)
    table = prediction_table(before, after)
    assert table["model"].tolist() == ["before", "after"]
    assert table["p_d1"].tolist() == [0.25, 1e-7] and table["p_d2"].tolist() == [0.125, 3e-7]
    assert table["gap"].tolist() == [0.125, pytest.approx(2e-7, rel=1e-12)]
    assert prediction_table(before)["model"].tolist() == ["before"]


# --- heads ----------------------------------------------------------------------------------------


def _heads_result(folder, table, perf="mlm-loss", bias="ig2-gap"):
    from bias_lab.heads.runs import HeadScoresResult

    return HeadScoresResult(folder, table, {"config": {"perf": perf, "bias": bias}})


def _head_table(bias_delta, perf_delta, heads=((0, 0), (0, 1), (1, 0), (1, 1))):
    return pd.DataFrame({"layer": [l for l, _ in heads], "head": [h for _, h in heads],
                         "perf": 1.0, "bias": [np.nan if b is None else 1.0 for b in bias_delta],
                         "perf_delta": perf_delta, "bias_delta": [np.nan if b is None else b for b in bias_delta]})


def test_head_score_correlation_is_numpys_pearson_over_shared_heads(tmp_path):
    from bias_lab.heads.analyses import head_score_correlation

    first = _heads_result(tmp_path, _head_table([0.1, 0.4, -0.2, 0.3], [1.0, 2.0, 3.0, 5.0]))
    # the second run scored three of the four heads (and one more the first lacks)
    second = _heads_result(tmp_path, _head_table([0.2, 0.1, -0.5, 0.0], [2.0, 1.0, 7.0, 9.0],
                                                 heads=((0, 0), (0, 1), (1, 1), (2, 0))), bias="stereoset")
    result = head_score_correlation(first, second, "bias_delta")
    # shared: (0,0) 0.1↔0.2, (0,1) 0.4↔0.1, (1,1) 0.3↔-0.5
    expected = np.corrcoef([0.1, 0.4, 0.3], [0.2, 0.1, -0.5])[0, 1]
    assert result.value == pytest.approx(expected) and result.shared == 3 and result.problem is None
    assert len(result.merged) == 3
    assert result.note == "the runs measure bias with different metrics (ig2-gap and stereoset)"
    assert result.table().to_dict("records") == [{"score": "bias_delta", "shared_heads": 3,
                                                  "pearson_r": pytest.approx(expected)}]
    perf = head_score_correlation(first, second, "perf_delta")
    assert perf.value == pytest.approx(np.corrcoef([1.0, 2.0, 5.0], [2.0, 1.0, 7.0])[0, 1]) and perf.note is None


def test_head_score_correlation_says_why_there_is_none(tmp_path):
    from bias_lab.heads.analyses import head_score_correlation

    scored = _heads_result(tmp_path, _head_table([0.1, 0.4, -0.2, 0.3], [1.0, 2.0, 3.0, 5.0]))
    unscored = _heads_result(tmp_path, _head_table([None] * 4, [1.0, 2.0, 3.0, 4.0]), bias=None)
    names = ("first run (r1)", "second run (r2)")
    missing = head_score_correlation(unscored, scored, "bias_delta", names=names)
    assert missing.value is None and missing.table().empty
    assert missing.problem.startswith("no correlation of bias_delta: the first run (r1) has no bias scores")
    constant = _heads_result(tmp_path, _head_table([0.25] * 4, [1.0, 2.0, 3.0, 4.0]))
    flat = head_score_correlation(scored, constant, "bias_delta", names=names)
    assert flat.value is None and "same for every shared head in the second run (r2)" in flat.problem
    single = _heads_result(tmp_path, _head_table([0.3], [1.0], heads=((0, 0),)))
    one = head_score_correlation(scored, single, "bias_delta", names=names)
    assert one.value is None and "at least 2 heads scored in both runs, they share 1" in one.problem
    other_shape = _heads_result(tmp_path, _head_table([0.3], [1.0], heads=((5, 5),)))
    none = head_score_correlation(scored, other_shape, "perf_delta")
    assert none.merged.empty and none.value is None and "share no (layer, head)" in none.problem
    for result in (missing, flat, one, none):
        assert "nan" not in result.problem.lower()


def test_head_table_fit_status_counts_and_curve_table(tiny_loaded):
    from bias_lab.heads.analyses import curve_table, fits_model, status_counts

    loaded = tiny_loaded("bert")
    grid = pd.DataFrame({"layer": [0, 0, 1], "head": [0, loaded.num_heads - 1, 2],
                         "status": ["pruned", "kept", "pruned"]})
    assert fits_model(grid, loaded) and not fits_model(grid, None)
    assert not fits_model(grid.assign(layer=[0, 0, loaded.num_layers]), loaded)
    assert not fits_model(grid.assign(head=[0, 0, loaded.num_heads]), loaded)
    assert status_counts(grid) == {"pruned": 2, "protected": 0, "kept": 1}
    curve = pd.DataFrame({"step": [0, 1], "pruned": [0, 2], "perf": [1.0, 1.5], "bias": [0.2, 0.1],
                          "heads": [[], [[0, 1], [1, 2]]]})
    table = curve_table(curve)
    assert table["heads"].tolist() == ["[]", "[[0, 1], [1, 2]]"]
    assert [json.loads(h) for h in table["heads"]] == curve["heads"].tolist()
    assert curve_table(table)["heads"].tolist() == table["heads"].tolist()  # text stays as it is


def test_heads_run_label_says_when_a_run_has_no_bias_scores():
    from bias_lab.heads.analyses import heads_run_label
    from bias_lab.store import RunStore

    store = RunStore()
    ids = {}
    for bias in ("ig2-gap", None):
        run = store.start("heads", {"perf": "mlm-loss", "bias": bias}, model="m")
        run.complete({"heads": 8})
        ids[bias] = run.id
    labels = {record.id: heads_run_label(record) for record in store.list(kind="heads")}
    assert labels[ids[None]].endswith(f" · no bias scores · {ids[None]}") and labels[ids[None]].startswith("m · ")
    assert "no bias scores" not in labels[ids["ig2-gap"]] and labels[ids["ig2-gap"]].endswith(ids["ig2-gap"])


# --- masks ----------------------------------------------------------------------------------------


def test_mask_head_counts_and_steps_to_prune_by_hand():
    from bias_lab.pruning.summary import head_status, pruned_head_count, steps_to_prune

    heads = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "alive": [True, False, False, True]})
    assert pruned_head_count(heads) == 2
    assert head_status(heads)["status"].tolist() == ["kept", "pruned", "pruned", "kept"]
    # σ(S) < 0.1 needs S < −log 9 ≈ −2.197: 220 steps of 0.01, 3 steps of 1
    assert steps_to_prune(0.1, 0.01) == 220 and steps_to_prune(0.1, 1.0) == 3
    assert steps_to_prune(0.5, 0.01) == 0  # σ(0) = 0.5 is not above τ = 0.5
    assert steps_to_prune(0.0, 0.01) is None and steps_to_prune(0.1, 0.0) is None


def test_mask_misfit_names_the_layer_count_and_the_masks_model(tiny_loaded):
    from bias_lab.pruning.masks import MaskSet, Scores
    from bias_lab.pruning.summary import mask_misfit

    loaded = tiny_loaded("bert")
    fits = Scores(loaded, "head").to_masks({"model": "tiny"})
    assert mask_misfit(fits, loaded) is None
    key = next(iter(fits.masks))
    deeper = MaskSet("head", {**fits.masks, f"layer{loaded.num_layers}.value": fits.masks[key]},
                     {"model": "org/deep-model"})
    assert mask_misfit(deeper, loaded) == (f"made for {loaded.num_layers + 1} layers, the loaded model has "
                                           f"{loaded.num_layers} (a mask of org/deep-model)")
    wider = MaskSet("head", {**fits.masks, key: torch.ones(fits.masks[key].shape[0] + 1, dtype=torch.bool)}, {})
    reason = mask_misfit(wider, loaded)
    assert reason.startswith("made for another model shape: ") and key in reason


def test_stored_masks_list_each_finished_run_with_why_it_does_not_fit(tiny_model_dir, tmp_path):
    from bias_lab.models import load_model
    from bias_lab.pruning.kaneko import KanekoObjective
    from bias_lab.pruning.masks import MaskSet
    from bias_lab.pruning.summary import stored_masks
    from bias_lab.pruning.train import PruneSettings, train_mask

    corpus = [f"the {w} is here and works ." for w in ["he", "she", "nurse", "doctor"] * 4]
    trained = {}
    for name, sizes in (("fits", {}), ("deep", {"layers": 3})):
        loaded = load_model(tiny_model_dir("bert", **sizes), device="cpu")
        trained[name] = train_mask(loaded, KanekoObjective(loaded, corpus), tmp_path / name,
                                   PruneSettings(block="head", batch_size=8))
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    read = []

    def reader(path):
        read.append(path)
        return MaskSet.load(path)

    found = {mask.path: mask for mask in stored_masks(loaded, read=reader)}
    assert set(found) == {trained["fits"].mask_path, trained["deep"].mask_path} and set(read) == set(found)
    fitting, deep = found[trained["fits"].mask_path], found[trained["deep"].mask_path]
    assert fitting.fits and fitting.problem is None and fitting.label.endswith(fitting.record.id)
    assert "% kept" in fitting.label and not fitting.label.startswith("prune · ")
    assert not deep.fits and deep.problem.startswith("made for 3 layers, the loaded model has 2")
    trained["deep"].mask_path.write_bytes(b"not a mask")
    broken = {m.path: m for m in stored_masks(loaded)}[trained["deep"].mask_path]
    assert broken.problem.startswith("unreadable: ")


# --- evaluation -----------------------------------------------------------------------------------


def test_benchmark_choices_follow_the_benchmark_table():
    from bias_lab.evaluation.before_after import data_hint, unusable_benchmarks, usable_benchmarks
    from bias_lab.metrics import BENCHMARKS

    assert usable_benchmarks("masked") == tuple(n for n, e in BENCHMARKS.items() if "masked" in e.kinds)
    assert unusable_benchmarks("masked") == "toxicity and toxicity-gap need a causal LM"
    assert "mlm-loss" not in usable_benchmarks("causal") and "ig2-gap" not in usable_benchmarks("causal")
    assert {"toxicity", "toxicity-gap"} <= set(usable_benchmarks("causal"))
    assert unusable_benchmarks("causal") == "mlm-loss and ig2-gap need a masked LM"
    assert usable_benchmarks("encoder") == ("seat",)
    assert unusable_benchmarks("encoder") == ("stereoset, crows, winobias and perplexity need a masked LM or a causal "
                                              "LM; mlm-loss and ig2-gap need a masked LM; toxicity and toxicity-gap "
                                              "need a causal LM")
    for name in BENCHMARKS:
        assert data_hint(name)
    assert "JSONL" in data_hint("ig2-gap") and "text file" in data_hint("mlm-loss")


def test_evaluate_before_after_stores_both_and_tabulates_the_headline(tiny_loaded, tmp_path):
    from bias_lab.data import load_stereoset
    from bias_lab.evaluation import evaluate
    from bias_lab.evaluation.before_after import evaluate_before_after
    from bias_lab.evaluation.record import EvaluationResult
    from bias_lab.interventions import InterventionSpec, NeuronEdit
    from bias_lab.metrics import headline
    from bias_lab.store import RunStore

    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    loaded = tiny_loaded("bert")
    spec = InterventionSpec(tuple(NeuronEdit(1, n, 0.0) for n in range(30)), position="mask")
    runs = evaluate_before_after(loaded, "stereoset", spec, data=str(path), limit=1)
    data = load_stereoset(path).first(1)
    before, after = evaluate(loaded, "stereoset", data), evaluate(loaded, "stereoset", data, intervention=spec)
    table = runs.summary_table()
    assert table["model"].tolist() == ["before", "after"]
    for column, value in headline("stereoset", before.summary).items():
        assert table[column].tolist() == pytest.approx([value, headline("stereoset", after.summary)[column]])
    assert set(runs.summaries()) == {"before", "after"}
    stored = {r.summary["method"]: r for r in RunStore().list(kind="evaluate")}
    assert set(stored) == {"original", "BNS"}
    assert all(r.config["limit"] == 1 and r.config["items"] == 1 and r.config["data"] == str(path)
               for r in stored.values())
    assert EvaluationResult.load(stored["BNS"].artifact_dir).items["score"].tolist() == \
        pytest.approx(after.items["score"].tolist())
    alone = evaluate_before_after(loaded, "stereoset", None, data=str(path), limit=1)
    assert alone.after is None and alone.summary_table()["model"].tolist() == ["before"]


def test_evaluate_before_after_reports_out_of_memory_with_the_batch_size(tiny_loaded, tmp_path, monkeypatch):
    import bias_lab.evaluation as evaluation
    from bias_lab.errors import BiasLabError
    from bias_lab.evaluation.before_after import evaluate_before_after

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    monkeypatch.setattr(evaluation, "evaluate", out_of_memory)
    with pytest.raises(BiasLabError, match="out of memory with batch size 8: set a smaller batch size"):
        evaluate_before_after(tiny_loaded("bert"), "stereoset", None, data=str(path), batch_size=8)
    with pytest.raises(BiasLabError, match="out of memory with the automatic batch size"):
        evaluate_before_after(tiny_loaded("bert"), "stereoset", None, data=str(path))


def _stored_evaluation(benchmark, summary, config, model="m"):
    from bias_lab.evaluation.record import EvaluationResult
    from bias_lab.metrics import headline
    from bias_lab.store import RunStore

    run = RunStore().start("evaluate", {"benchmark": benchmark, **config}, model=model)
    with run:
        EvaluationResult(run.dir, benchmark, summary, pd.DataFrame({"score": [1.0]}), run.record.config).save(run.dir)
        run.complete({"method": config.get("method", "original"), **headline(benchmark, summary)})
    return run.id


def _stereoset_summary(ss, lms):
    return {"intrasentence": {"overall": {"ss": ss, "lms": lms, "icat": lms * min(ss, 100 - ss) / 50}}}


def test_tradeoff_points_datasets_and_axes():
    from bias_lab.evaluation.tradeoff import tradeoff_axes, tradeoff_datasets, tradeoff_points, tradeoff_selection
    from bias_lab.store import RunStore

    a = _stored_evaluation("stereoset", _stereoset_summary(60.0, 90.0), {"data_label": "dev.json, first 2"})
    b = _stored_evaluation("stereoset", _stereoset_summary(45.0, 80.0),
                           {"data_label": "dev.json, first 2", "method": "BNS"})
    c = _stored_evaluation("stereoset", _stereoset_summary(52.0, 85.0), {"data": "other.json", "items": 7})
    _stored_evaluation("crows", {"overall": {"metric": 55.0}}, {})  # bias only: no point
    unfinished = RunStore().start("evaluate", {"benchmark": "stereoset"}, model="m")
    unfinished.complete({"bias": 1.0, "performance": 2.0})  # no stored artifacts: not a point
    points = tradeoff_points()
    assert set(points["run"]) == {a, b, c}
    row = points.set_index("run").loc[b]
    assert (row["bias"], row["performance"], row["method"]) == (5.0, 20.0, "BNS")
    assert points.set_index("run").loc[c, "data"] == "other.json, all 7"
    assert tradeoff_datasets(points, "stereoset") == ["dev.json, first 2", "other.json, all 7"]
    assert tradeoff_datasets(points, "crows") == []
    assert set(tradeoff_selection(points, "stereoset", "dev.json, first 2")["run"]) == {a, b}
    assert tradeoff_axes("stereoset") == ("100 − LMS", "|SS − 50|")
    assert tradeoff_axes("crows") == ("performance", "|metric − 50|")
    assert tradeoff_points(RunStore()).columns.tolist()[:8] == ["run", "model", "benchmark", "method", "data", "items",
                                                                "bias", "performance"]
    same = points.set_index("run").loc[a]
    assert (same["bias_run"], same["performance_run"]) == (a, a)  # one run gives both
    assert (same["bias_metric"], same["performance_metric"]) == ("stereoset", "stereoset-lms")


def _toxicity_summary(mean):
    return {"mean_toxicity": mean, "toxic_share": 0.0, "toxic_count": 0, "toxic_score": mean,
            "expected_max_toxicity": mean, "toxicity_probability": 0.0, "mean_new_tokens": 4.0}


HEADS = {"neurons": [], "heads": [{"layer": 1, "head": 0}], "position": "mask"}
OPTIONS = {"classifier": "clf", "max_new_tokens": 4, "samples": 1, "seed": 0}


def test_tradeoff_pairs_a_bias_run_with_a_performance_run_of_the_same_model_and_intervention():
    from bias_lab.evaluation.tradeoff import (default_metrics, metric_axes, metric_choices, metric_label,
                                              metric_values, tradeoff_datasets, tradeoff_points, tradeoff_selection)

    def toxicity(mean, model="m", spec=None, data="p.jsonl", options=OPTIONS):
        return _stored_evaluation("toxicity", _toxicity_summary(mean),
                                  {"data_label": f"{data}, first 6", "intervention": spec,
                                   "method": "head pruning" if spec else "original", "options": options}, model=model)

    def perplexity(value, model="m", spec=None, data="wiki.txt"):
        return _stored_evaluation("perplexity", {"perplexity": value},
                                  {"data_label": f"{data}, first 2", "intervention": spec,
                                   "method": "head pruning" if spec else "original"}, model=model)

    t_orig, t_heads = toxicity(0.5), toxicity(0.25, spec=HEADS)
    p_orig, p_heads = perplexity(30.0), perplexity(40.0, spec=HEADS)
    toxicity(0.9, model="other")  # no perplexity run of this model: no point
    perplexity(99.0, spec={**HEADS, "heads": [{"layer": 0, "head": 1}]})  # another intervention: no point
    t_other_data = toxicity(0.4, data="q.jsonl")
    stale = perplexity(31.0)  # older than ...
    time.sleep(1.1)  # (the store orders runs by the second they started)
    newest = perplexity(32.0)  # ... this one, on the same data: the newest makes the point
    values = metric_values()
    assert metric_choices(values) == (["toxicity"], ["perplexity"])
    assert default_metrics(values) == ("toxicity", "perplexity")
    points = tradeoff_points(values=values, bias="toxicity", performance="perplexity")
    pairs = {(row.bias_run, row.performance_run): row for row in points.itertuples()}
    assert set(pairs) == {(t_orig, newest), (t_heads, p_heads), (t_other_data, newest)}
    assert stale not in set(points["performance_run"]) and p_orig not in set(points["performance_run"])
    heads = pairs[(t_heads, p_heads)]
    assert (heads.bias, heads.performance, heads.method, heads.model) == (0.25, 40.0, "head pruning", "m")
    assert heads.run == f"{t_heads} + {p_heads}" and heads.benchmark == "toxicity + perplexity"
    # the point's data is the data of both runs; a toxicity run's includes its classifier and generation
    assert heads.bias_data == "p.jsonl, first 6 · classifier clf, 4 new tokens, 1 sample, seed 0"
    assert heads.data == f"{heads.bias_data} | wiki.txt, first 2"
    datasets = tradeoff_datasets(points)
    assert datasets[0] == heads.data and len(datasets) == 2
    assert set(tradeoff_selection(points, None, heads.data)["bias_run"]) == {t_orig, t_heads}
    assert metric_axes("toxicity", "perplexity") == ("perplexity", "mean toxicity")
    assert metric_label("toxicity-gap") == "toxicity gap Σ|axis − group| (toxicity-gap)"
    assert metric_label("perplexity") == "perplexity"
    # another classifier is other data: not comparable with the first
    other = toxicity(0.3, options={**OPTIONS, "classifier": "unitary/toxic-bert"})
    again = tradeoff_points(bias="toxicity", performance="perplexity").set_index("bias_run")
    assert again.loc[other, "performance_run"] == newest
    assert again.loc[other, "data"] != again.loc[t_orig, "data"]
    assert "classifier unitary/toxic-bert" in again.loc[other, "data"]


def test_tradeoff_keeps_stereoset_to_one_run_and_pairs_it_across_benchmarks():
    from bias_lab.evaluation.tradeoff import tradeoff_points

    both = _stored_evaluation("stereoset", _stereoset_summary(60.0, 90.0), {"data_label": "dev.json, first 2"})
    other = _stored_evaluation("stereoset", _stereoset_summary(52.0, 85.0), {"data_label": "other.json, all 7"})
    text = _stored_evaluation("perplexity", {"perplexity": 12.0}, {"data_label": "wiki.txt, first 2"})
    own = tradeoff_points(bias="stereoset", performance="stereoset-lms")
    assert sorted(zip(own["bias_run"], own["performance_run"])) == sorted([(both, both), (other, other)])
    across = tradeoff_points(bias="stereoset", performance="perplexity")
    assert sorted(zip(across["bias_run"], across["performance_run"])) == sorted([(both, text), (other, text)])
    assert set(across["performance"]) == {12.0}
    assert tradeoff_points(bias="toxicity", performance="perplexity").empty


# --- generations (toxicity) ----------------------------------------------------------------------


def _generations(rows):
    """Hand-made items of a toxicity evaluation: (id, seed, sample, axis, group, prompt, continuation, toxicity)."""
    frame = pd.DataFrame(rows, columns=["id", "seed", "sample", "axis", "group", "prompt", "continuation", "toxicity"])
    return frame.assign(text=frame["prompt"] + frame["continuation"], new_tokens=3)


BEFORE = _generations([("w", 0, 0, "gender", "women", "the women", " are bad", 0.8),
                       ("w", 0, 1, "gender", "women", "the women", " are ok", 0.4),
                       ("m", 0, 0, "gender", "men", "the men", " are fine", 0.2),
                       ("m", 0, 1, "gender", "men", "the men", " are here", 0.0),
                       ("c", 0, 0, "religion", "christian", "the christians", " pray", 0.3),
                       ("j", 0, 0, "religion", "jewish", "the jews", " pray", 0.5)])
AFTER = BEFORE.assign(continuation=[" are kind", " are ok", " are fine", " left", " sing", " pray"],
                      toxicity=[0.1, 0.4, 0.3, 0.1, 0.3, 0.2])


def test_generations_side_by_side_by_hand():
    from bias_lab.evaluation.generations import (filter_generations, generation_groups, generations_side_by_side,
                                                 sort_choices, sort_generations)

    # the after side comes in another order: rows are matched by (id, seed, sample), not by position
    table = generations_side_by_side(BEFORE, AFTER.iloc[::-1])
    assert table.columns.tolist() == ["id", "seed", "sample", "axis", "group", "prompt", "continuation_before",
                                      "toxicity_before", "continuation_after", "toxicity_after", "change"]
    assert table[["id", "sample"]].values.tolist() == [["w", 0], ["w", 1], ["m", 0], ["m", 1], ["c", 0], ["j", 0]]
    first = table.iloc[0]
    assert (first["continuation_before"], first["toxicity_before"]) == (" are bad", 0.8)
    assert (first["continuation_after"], first["toxicity_after"]) == (" are kind", 0.1)
    assert table["change"].tolist() == pytest.approx([-0.7, 0.0, 0.1, 0.1, 0.0, -0.3])
    assert generation_groups(table) == ["gender/men", "gender/women", "religion/christian", "religion/jewish"]
    assert filter_generations(table, "gender/women")["sample"].tolist() == [0, 1]
    assert len(filter_generations(table, "all groups")) == 6
    assert sort_generations(table, "toxicity before (highest first)")["toxicity_before"].tolist()[:2] == [0.8, 0.5]
    assert sort_generations(table, "toxicity after (highest first)")["toxicity_after"].tolist()[0] == 0.4
    assert sort_generations(table, "change (largest drop first)")["id"].tolist()[:2] == ["w", "j"]
    assert sort_generations(table, "prompt order")["id"].tolist() == table["id"].tolist()
    # before only (no intervention): the before columns, and only the orders that apply
    alone = generations_side_by_side(BEFORE)
    assert alone.columns.tolist()[-2:] == ["continuation_before", "toxicity_before"]
    assert sort_choices(alone) == ["prompt order", "toxicity before (highest first)"]
    # a generation that only one side has keeps empty cells on the other
    partial = generations_side_by_side(BEFORE, AFTER.iloc[1:])
    assert len(partial) == 6 and np.isnan(partial.iloc[0]["toxicity_after"])
    # several seeds: one row per prompt × seed × sample
    seeded = generations_side_by_side(pd.concat([BEFORE, BEFORE.assign(seed=1)]),
                                      pd.concat([AFTER, AFTER.assign(seed=1)]))
    assert len(seeded) == 12


def test_group_toxicity_and_axis_gaps_by_hand():
    from bias_lab.errors import BiasLabError
    from bias_lab.evaluation.generations import axis_gaps, generations_side_by_side, group_toxicity

    groups = group_toxicity({"before": BEFORE, "after": AFTER, "none": None})
    assert groups.columns.tolist() == ["model", "axis", "group", "label", "mean_toxicity", "count"]
    before = groups[groups["model"] == "before"].set_index("label")
    assert before.loc["gender/women", "mean_toxicity"] == pytest.approx(0.6)
    assert before.loc["gender/men", "mean_toxicity"] == pytest.approx(0.1)
    assert before.loc["gender/women", "count"] == 2 and before.loc["religion/jewish", "count"] == 1
    after = groups[groups["model"] == "after"].set_index("label")
    assert after.loc["gender/women", "mean_toxicity"] == pytest.approx(0.25)
    gaps = axis_gaps({"before": BEFORE, "after": AFTER})
    by = {(row.model, row.axis): row.gap for row in gaps.itertuples()}
    # gender before: axis mean 0.35, |0.35 − 0.6| + |0.35 − 0.1| = 0.5; religion: mean 0.4, 0.1 + 0.1
    assert by[("before", "gender")] == pytest.approx(0.5) and by[("before", "religion")] == pytest.approx(0.2)
    # after: gender mean 0.225, |0.225 − 0.25| + |0.225 − 0.2| = 0.05; religion mean 0.25, 0.05 + 0.05
    assert by[("after", "gender")] == pytest.approx(0.05) and by[("after", "religion")] == pytest.approx(0.1)
    # two seeds: the gap of each seed, averaged (as the toxicity-gap summary)
    second = BEFORE.assign(seed=1, toxicity=[0.2, 0.2, 0.2, 0.2, 0.3, 0.3])  # no gap at all
    two = axis_gaps({"before": pd.concat([BEFORE, second])}).set_index("axis")["gap"]
    assert two["gender"] == pytest.approx(0.25) and two["religion"] == pytest.approx(0.1)
    # prompts without groups (RealToxicityPrompts): nothing per group
    ungrouped = BEFORE.assign(axis="", group="")
    assert group_toxicity({"before": ungrouped}).empty and axis_gaps({"before": ungrouped}).empty
    with pytest.raises(BiasLabError, match="only toxicity and toxicity-gap evaluations"):
        generations_side_by_side(pd.DataFrame({"score": [1.0]}))


def test_generation_settings_line_and_recorded_options():
    from bias_lab.evaluation.before_after import recorded_options
    from bias_lab.evaluation.generations import generates_text, generation_settings_text

    assert generates_text("toxicity") and generates_text("toxicity-gap") and not generates_text("stereoset")
    settings = {"classifier": "clf", "label": "toxicity", "max_new_tokens": 4, "samples": 2, "seeds": [0],
                "do_sample": True, "top_k": 50, "top_p": 1.0, "temperature": 1.0, "include_prompt": True}
    assert generation_settings_text(settings) == ("classifier clf (label toxicity) · 4 new tokens · 2 samples per "
                                                  "prompt · seed 0 · top-k 50")
    assert generation_settings_text({**settings, "do_sample": False, "seeds": [1, 2]}).endswith("seeds 1, 2 · greedy")

    class Scorer:
        source, label = "/models/clf", "toxicity"

        def score(self, texts):
            return [0.0] * len(texts)

    assert recorded_options({"classifier": Scorer(), "max_new_tokens": 4, "seeds": (1, 2), "progress": print}) == \
        {"classifier": "/models/clf", "label": "toxicity", "max_new_tokens": 4, "seeds": [1, 2]}


def test_evaluate_before_after_generates_with_one_classifier_and_records_it(tiny_model_dir, tiny_loaded, tmp_path,
                                                                            monkeypatch):
    from bias_lab.evaluation import evaluate, load_benchmark_data
    from bias_lab.evaluation.before_after import evaluate_before_after
    from bias_lab.interventions import HeadAblation, InterventionSpec
    from bias_lab.store import RunStore
    from bias_lab.toxicity import ToxicityScorer

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"{g}{i}", "prompt": f"the {w} {g} are", "group": g, "axis": "gender"})
                               + "\n" for g in ("women", "men") for i, w in enumerate(("young", "old"))))
    folder = tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                            problem_type="multi_label_classification")
    loads = []
    real = ToxicityScorer.load.__func__

    def counted(cls, *args, **kwargs):
        loads.append(args)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(ToxicityScorer, "load", classmethod(counted))
    loaded = tiny_loaded("gpt2")
    spec = InterventionSpec(heads=(HeadAblation(1, 0),))
    options = {"classifier": str(folder), "max_new_tokens": 4, "samples": 2, "seed": 3}
    runs = evaluate_before_after(loaded, "toxicity-gap", spec, data=str(prompts), options=options)
    assert len(loads) == 1  # one classifier for before and after
    data = load_benchmark_data("toxicity-gap", str(prompts))
    expected = [evaluate(loaded, "toxicity-gap", data, intervention=s, **options).summary["gap"] for s in (None, spec)]
    assert runs.summary_table()["bias"].tolist() == pytest.approx(expected)
    table = runs.generations()
    assert len(table) == 4 * 2 and (table["continuation_before"] != table["continuation_after"]).any()
    assert runs.axis_gaps().set_index("model").loc["before", "gap"] == pytest.approx(expected[0])
    for record in RunStore().list(kind="evaluate"):
        assert record.config["options"] == {"classifier": str(folder), "label": "toxicity", "max_new_tokens": 4,
                                            "samples": 2, "seed": 3}
