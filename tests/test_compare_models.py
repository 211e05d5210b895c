"""Compressed models side by side (issue 15): ``compare_models`` / ``bias-lab compare-models`` on a
tiny teacher, a smaller student and a pruned variant. Oracles: every cell against ``evaluate`` run
separately on that model and the metric table's reductions; the study's counts against hand-made
per-item tables and by hand from evaluate's items; sizes from the raw model; a planted preference
that fixes every StereoSet choice and WinoBias anti-bias choice."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from bias_lab.cli import main
from bias_lab.compression.choices import generation_length, stereoset_choices, winobias_choices
from bias_lab.compression.compare import ComparisonResult, CompareSettings, compare_models
from bias_lab.compression.variants import ModelVariant, model_variants, parse_variant
from bias_lab.errors import BiasLabError, Cancelled
from bias_lab.evaluation import evaluate, load_benchmark_data
from bias_lab.interventions import InterventionSpec
from bias_lab.metrics import METRICS, report_columns
from bias_lab.models import load_model
from bias_lab.progress import CancelToken
from bias_lab.store import RunStore

from .conftest import shared_path

# Fill words that are single tokens of both tiny vocabularies; the planted test raises the LM
# head's bias of one fill per example: "kind" (a stereotype), "female" (an anti-stereotype) and
# "house" (an unrelated fill).
STEREOSET = {"version": "test", "data": {"intrasentence": [
    {"id": "a", "target": "nurse", "bias_type": "gender", "context": "The nurse was very BLANK.",
     "sentences": [{"id": "a0", "sentence": "The nurse was very kind.", "gold_label": "stereotype"},
                   {"id": "a1", "sentence": "The nurse was very rude.", "gold_label": "anti-stereotype"},
                   {"id": "a2", "sentence": "The nurse was very car.", "gold_label": "unrelated"}]},
    {"id": "b", "target": "doctor", "bias_type": "profession", "context": "BLANK doctors are rich.",
     "sentences": [{"id": "b0", "sentence": "Male doctors are rich.", "gold_label": "stereotype"},
                   {"id": "b1", "sentence": "Female doctors are rich.", "gold_label": "anti-stereotype"},
                   {"id": "b2", "sentence": "Book doctors are rich.", "gold_label": "unrelated"}]},
    {"id": "c", "target": "lawyer", "bias_type": "profession", "context": "The lawyer is BLANK.",
     "sentences": [{"id": "c0", "sentence": "The lawyer is rich.", "gold_label": "stereotype"},
                   {"id": "c1", "sentence": "The lawyer is poor.", "gold_label": "anti-stereotype"},
                   {"id": "c2", "sentence": "The lawyer is house.", "gold_label": "unrelated"}]},
], "intersentence": []}}
PLANTED = {"kind": "stereotype", "female": "anti-stereotype", "house": "unrelated"}
CROWS = [("the poor man is lazy .", "the rich man is lazy .", "stereo", "socioeconomic"),
         ("she cooks food at home .", "he cooks food at home .", "stereo", "gender"),
         ("the old driver was slow .", "the young driver was slow .", "antistereo", "age")]
TEXT = ["the doctor is very kind and works in the city .", "she reads a book at home every day .",
        "the young man drives a car to school ."]
GROUPS = (("gender", "women"), ("gender", "men"))
CLASSIFIER_OPTIONS = {"max_new_tokens": 4, "samples": 2, "seed": 5}
TIMING = {"timing_batch": 2, "timing_length": 8, "timing_repeats": 1}


def _write_winobias(folder):
    folder.mkdir(exist_ok=True)
    type1 = ["1 [The doctor] said that [he] was busy.", "2 [The driver] told the nurse that [he] was late.",
             "3 The farmer met [the lawyer] because [he] was rich."]
    type2 = ["1 [The nurse] said that [she] was tired.", "2 The doctor called [the secretary] and [she] came.",
             "3 [The teacher] told the driver that [she] was here."]

    def swap(lines, old, new):
        return [line.replace(f"[{old}]", f"[{new}]") for line in lines]

    for split in ("dev", "test"):
        files = {f"pro_stereotyped_type1.txt.{split}": type1, f"anti_stereotyped_type1.txt.{split}": swap(type1, "he", "she"),
                 f"pro_stereotyped_type2.txt.{split}": type2, f"anti_stereotyped_type2.txt.{split}": swap(type2, "she", "he")}
        for name, lines in files.items():
            (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def data(tmp_path):
    """Every benchmark's fixture data, written here: benchmark → path."""
    stereoset = tmp_path / "dev.json"
    stereoset.write_text(json.dumps(STEREOSET))
    crows = tmp_path / "crows.csv"
    pd.DataFrame(CROWS, columns=["sent_more", "sent_less", "stereo_antistereo", "bias_type"]).to_csv(crows, index=False)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT) + "\n")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"{group}{i}", "prompt": f"the {word} {group} are", "group": group,
                                           "axis": axis}) + "\n"
                               for axis, group in GROUPS for i, word in enumerate(["young", "old"])))
    return {"stereoset": stereoset, "crows": crows, "perplexity": text, "winobias": _write_winobias(tmp_path / "wb"),
            "toxicity": prompts, "toxicity-gap": prompts}


@pytest.fixture
def classifier_dir(tiny_model_dir):
    return tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                          problem_type="multi_label_classification")


@pytest.fixture
def family(tiny_model_dir, tmp_path):
    """A tiny teacher, a smaller student (one layer fewer) and the teacher with two heads pruned."""
    spec = tmp_path / "heads.json"
    InterventionSpec.from_dict({"heads": [{"layer": 0, "head": 1}, {"layer": 1, "head": 3}]}).save(spec)
    teacher, student = tiny_model_dir("gpt2"), tiny_model_dir("gpt2", layers=1)
    return {"teacher": teacher, "student": student, "spec": spec, "models": [str(teacher), str(student), f"{teacher}+{spec}"]}


@pytest.fixture
def distilled(tiny_model_dir, tmp_path):
    """A real one-layer student of the tiny teacher: a finished `distill` run (two steps), kept in a
    run store of its own so that the test's store holds only what the comparison writes."""
    from bias_lab.compression.distill import DistillSettings, distill

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the {w} is here and works in the city ." for w in ["man", "woman", "doctor",
                                                                                    "nurse"] * 20) + "\n")
    teacher = load_model(tiny_model_dir("gpt2"), device="cpu")
    result = distill(teacher, corpus, tmp_path / "student-run",
                     DistillSettings(num_layers=1, steps=2, batch_size=4, max_length=16),
                     store=RunStore(tmp_path / "distill-home"))
    return result.folder


def _settings(data, benchmarks, classifier=None, **extra):
    options = {name: {**CLASSIFIER_OPTIONS, "classifier": str(classifier)} for name in benchmarks
               if name.startswith("toxicity")}
    return CompareSettings(benchmarks=tuple(benchmarks), data={name: str(data[name]) for name in benchmarks},
                           options=options, device="cpu", **{**TIMING, **extra})


def _hand_stereoset_choices(items):
    """Per example, the label of the single highest score (ties counted apart) — by plain loops."""
    counts = {"stereotype": 0, "anti-stereotype": 0, "unrelated": 0, "tie": 0}
    for _, rows in items.groupby("example_id"):
        scores = dict(zip(rows["gold_label"], rows["score"]))
        best = max(scores.values())
        winners = [label for label, score in scores.items() if score == best]
        counts[winners[0] if len(winners) == 1 else "tie"] += 1
    return counts


def test_every_cell_equals_evaluate_run_separately(family, distilled, data, classifier_dir, tmp_path):
    """Teacher, a distilled student (its run folder as the model) and the teacher with two heads pruned."""
    benchmarks = ("perplexity", "stereoset", "crows", "winobias", "toxicity", "toxicity-gap")
    models = [str(family["teacher"]), str(distilled), f"{family['teacher']}+{family['spec']}"]
    result = compare_models(models, tmp_path / "run", _settings(data, benchmarks, classifier_dir))
    table = result.table.set_index("model")
    labels = [v.label for v in model_variants(models)]
    assert labels == [family["teacher"].name, "student-run", f"{family['teacher'].name}+heads"]
    # toxicity and toxicity-gap both report mean_toxicity: the second keeps it under its own prefix
    assert result.column("toxicity", "mean_toxicity") == "mean_toxicity"
    assert result.column("toxicity-gap", "mean_toxicity") == "toxicity-gap:mean_toxicity"
    for label, source, spec in ((labels[0], family["teacher"], None), (labels[1], distilled, None),
                                (labels[2], family["teacher"], InterventionSpec.load(family["spec"]))):
        loaded = load_model(source, device="cpu")
        for name in benchmarks:
            options = {**CLASSIFIER_OPTIONS, "classifier": str(classifier_dir)} if name.startswith("toxicity") else {}
            separate = evaluate(loaded, name, load_benchmark_data(name, str(data[name])), intervention=spec, **options)
            for key, value in report_columns(name, separate.summary).items():
                assert table.loc[label, result.column(name, key)] == pytest.approx(value, rel=1e-12, abs=1e-12), \
                    (label, name, key)
            assert result.summaries[label][name] == json.loads(json.dumps(separate.summary))
            if name == "stereoset":
                hand = _hand_stereoset_choices(separate.items)
                for column, kind in result.stereoset_choice_columns().items():
                    assert table.loc[label, column] == hand[kind], (label, column)
                assert sum(hand.values()) == len(STEREOSET["data"]["intrasentence"])
            if name == "winobias":
                anti = sum(a > p for a, p in zip(separate.items["score_anti"], separate.items["score_pro"]))
                assert table.loc[label, "winobias_anti_choices"] == anti
                assert table.loc[label, "winobias_pairs"] == 12
            if name.startswith("toxicity"):
                column = result.column(name, "avg_generation_length")
                assert table.loc[label, column] == pytest.approx(np.mean(separate.items["new_tokens"].tolist()))
        # size from the raw model: parameters, layers, heads less the spec's
        config = loaded.model.config
        assert table.loc[label, "parameters"] == sum(p.numel() for p in loaded.model.parameters())
        assert table.loc[label, "layers"] == config.n_layer
        assert table.loc[label, "heads"] == config.n_layer * config.n_head
        assert table.loc[label, "heads_kept"] == config.n_layer * config.n_head - (2 if spec is not None else 0)
        assert table.loc[label, "inference_ms_per_token"] > 0
    # every metric of the table computed from the benchmarks run is a column
    assert set(result.metric_columns().values()) == {m for m in METRICS if METRICS[m].benchmark in benchmarks}
    assert ComparisonResult.load(tmp_path / "run").table.equals(result.table)
    record = RunStore().get(str(tmp_path / "run"))
    assert record.kind == "compare-models" and record.status == "complete"


def test_choice_counts_on_a_hand_made_table():
    """Known scores: each kind of sentence wins once, two examples tie at the top (counted apart,
    not as the first label), and intersentence rows are not counted; a tie between pro and anti is
    no anti-bias choice; the generation length is the mean over every generation."""
    rows = []
    for example, scores in {"e1": (0.5, 0.2, 0.1), "e2": (0.1, 0.6, 0.3), "e3": (0.2, 0.3, 0.9),
                            "e4": (0.4, 0.4, 0.1), "e5": (0.3, 0.1, 0.3)}.items():
        rows += [{"task": "intrasentence", "example_id": example, "gold_label": label, "score": score}
                 for label, score in zip(("stereotype", "anti-stereotype", "unrelated"), scores)]
    rows += [{"task": "intersentence", "example_id": example, "gold_label": label, "score": score}
             for example in ("e1", "i1")
             for label, score in zip(("stereotype", "anti-stereotype", "unrelated"), (0.1, 0.9, 0.2))]
    counts = stereoset_choices(pd.DataFrame(rows).sample(frac=1, random_state=3))  # order must not matter
    assert counts == {"stereoset_stereotype_choices": 1, "stereoset_anti_stereotype_choices": 1,
                      "stereoset_unrelated_choices": 1, "stereoset_tied_choices": 2}
    pairs = pd.DataFrame({"score_pro": [-1.0, -2.0, -3.0, -0.5], "score_anti": [-2.0, -1.0, -3.0, -0.1]})
    assert winobias_choices(pairs) == {"winobias_anti_choices": 2, "winobias_pairs": 4}  # the tie is no anti choice
    generations = pd.DataFrame({"id": ["p0", "p0", "p1"], "new_tokens": [3, 5, 10]})
    assert generation_length(generations) == {"avg_generation_length": 6.0}


def test_a_planted_preference_sets_every_choice(tiny_model_dir, data, tmp_path):
    """A masked LM whose head prefers "kind", "female", "house" and "he" by +50 logits: StereoSet
    chooses the stereotype, the anti-stereotype and the unrelated fill once each, and WinoBias
    prefers the anti-stereotypical sentence exactly in the type-2 pairs ("he" there is anti)."""
    planted = load_model(tiny_model_dir("bert"), device="cpu")
    tokens = planted.tokenizer.convert_tokens_to_ids(list(PLANTED) + ["he"])
    assert planted.tokenizer.unk_token_id not in tokens
    with torch.no_grad():
        planted.model.get_output_embeddings().bias[tokens] += 50.0
    folder = tmp_path / "planted"
    planted.model.save_pretrained(folder)
    planted.tokenizer.save_pretrained(folder)
    result = compare_models([str(tiny_model_dir("bert")), str(folder)], tmp_path / "run",
                            _settings(data, ("stereoset", "winobias")))
    row = result.table.set_index("model").loc["planted"]
    assert (row["stereoset_stereotype_choices"], row["stereoset_anti_stereotype_choices"],
            row["stereoset_unrelated_choices"], row["stereoset_tied_choices"]) == (1, 1, 1, 0)
    assert row["winobias_anti_choices"] == 6 and row["winobias_pairs"] == 12
    # SS per target (one example each): nurse 100 (the stereotype wins), doctor 0 (the anti-stereotype
    # wins); the lawyer's stereotype against anti-stereotype is left to the unplanted weights
    assert row["ss"] == pytest.approx(100 / 3) or row["ss"] == pytest.approx(200 / 3)


def test_resume_after_a_cancel_scores_only_the_missing_units(family, data, tmp_path, monkeypatch):
    import bias_lab.evaluation as evaluation

    settings = _settings(data, ("perplexity", "winobias"))
    token, calls = CancelToken(), []
    real = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", lambda loaded, name, *a, **k: calls.append(name) or real(loaded, name, *a, **k))

    def stop_after_five(done, total, message=""):
        if done >= 5:
            token.cancel()

    with pytest.raises(Cancelled):
        compare_models(family["models"], tmp_path / "run", settings, progress=stop_after_five, cancel=token)
    assert RunStore().get(str(tmp_path / "run")).status == "interrupted"
    # units 1–5: the teacher's facts and both benchmarks, the student's facts and perplexity
    assert calls == ["perplexity", "winobias", "perplexity"]
    seen = []
    result = compare_models(family["models"], tmp_path / "run", settings, progress=lambda d, t, m="": seen.append(d))
    assert seen[0] == 5 and seen[-1] == 9
    assert calls[3:] == ["winobias", "perplexity", "winobias"]  # nothing scored twice
    assert result.table["model"].tolist() == [v.label for v in model_variants(family["models"])]
    whole = compare_models(family["models"], tmp_path / "whole", settings)
    columns = [c for c in result.table if c != "inference_ms_per_token"]  # timing is measured, not computed
    pd.testing.assert_frame_equal(result.table[columns], whole.table[columns])
    assert len(RunStore().list(kind="compare-models")) == 2


def _cli(capsys, *arguments):
    code = main(["compare-models", *map(str, arguments)])
    return code, capsys.readouterr()


def test_cli_writes_the_run_and_prints_the_table(capsys, family, data, tmp_path):
    out = tmp_path / "run"
    code, printed = _cli(capsys, *family["models"], "--benchmarks", "perplexity", "stereoset", "--data",
                         f"perplexity={data['perplexity']}", f"stereoset={data['stereoset']}", "--labels", "teacher",
                         "student", "pruned", "--device", "cpu", "--timing-repeats", "1", "--out", out)
    assert code == 0, printed.err
    result = ComparisonResult.load(out)
    assert result.table["model"].tolist() == ["teacher", "student", "pruned"]
    assert result.table["heads_kept"].tolist() == [8, 4, 6]
    assert "teacher" in printed.out and "perplexity" in printed.out and str(out) in printed.out
    assert result.config["data"]["stereoset"] == str(data["stereoset"])


@pytest.mark.parametrize("case", ["unknown benchmark", "missing model", "spec of another shape", "kind cannot run",
                                  "data of no benchmark", "data without =", "duplicate model", "mask of another shape"])
def test_bad_input_is_one_line_exit_2_and_leaves_no_run(capsys, family, data, tmp_path, tiny_model_dir, case):
    teacher, out = family["teacher"], tmp_path / "run"
    wrong = tmp_path / "wrong.json"
    InterventionSpec.from_dict({"heads": [{"layer": 5, "head": 0}]}).save(wrong)
    arguments = {
        "unknown benchmark": ([teacher], ["perplexity", "stereosett"], [f"perplexity={data['perplexity']}"]),
        "missing model": ([tmp_path / "no-such-model"], ["perplexity"], [f"perplexity={data['perplexity']}"]),
        "spec of another shape": ([teacher, f"{teacher}+{wrong}"], ["perplexity"], [f"perplexity={data['perplexity']}"]),
        "kind cannot run": ([teacher, tiny_model_dir("bert")], ["perplexity", "toxicity"],
                            [f"perplexity={data['perplexity']}", f"toxicity={data['toxicity']}"]),
        "data of no benchmark": ([teacher], ["perplexity"], [f"perplexity={data['perplexity']}",
                                                             f"stereoset={data['stereoset']}"]),
        "data without =": ([teacher], ["perplexity"], [str(data["perplexity"])]),
        "duplicate model": ([teacher, teacher], ["perplexity"], [f"perplexity={data['perplexity']}"]),
        "mask of another shape": ([f"{family['student']}+{_mask_run(teacher, tmp_path / 'teacher-mask')}"],
                                  ["perplexity"], [f"perplexity={data['perplexity']}"]),
    }[case]
    models, benchmarks, sources = arguments
    code, printed = _cli(capsys, *models, "--benchmarks", *benchmarks, "--data", *sources, "--device", "cpu",
                         "--out", out)
    assert code == 2, printed.err
    message = printed.err.strip()
    assert message.startswith("error: ") and "\n" not in message
    expected = {"unknown benchmark": "'stereosett'", "missing model": "does not exist",
                "spec of another shape": "layer 5 is out of range", "kind cannot run": "cannot run toxicity",
                "data of no benchmark": "'stereoset', which is not among the benchmarks",
                "data without =": "is not BENCHMARK=PATH", "duplicate model": "given twice",
                "mask of another shape": "mask entry"}[case]
    assert expected in message
    if case == "kind cannot run":
        assert "tiny-bert" in message  # names the model
    if case == "spec of another shape":
        assert "+wrong" in message
    assert RunStore().list() == [] and not out.exists()


def _mask_run(model_folder, folder):
    """A finished mask-training run whose mask removes the value columns of head 2 of layer 1 of a
    tiny GPT-2 (fused c_attn; the logical [out, in] rows 2·hidden + 2·size … + size)."""
    from bias_lab.pruning.masks import MaskSet, densities, surviving_heads
    from bias_lab.pruning.train import MaskTrainingResult

    loaded = load_model(model_folder, device="cpu")
    hidden, size = loaded.hidden_size, loaded.head_size
    mask = torch.ones(3 * hidden, hidden, dtype=torch.bool)
    mask[2 * hidden + 2 * size:2 * hidden + 3 * size] = False
    masks = MaskSet("unstructured", {"layer1.query": mask}, {"model": str(model_folder)})
    MaskTrainingResult(folder, masks, pd.DataFrame({"step": [1], "loss": [0.0]}), densities(loaded, masks),
                       surviving_heads(loaded, masks), {"config": {}}).save(folder)
    return folder


def test_variants_from_specs_masks_and_mask_runs(family, tiny_model_dir, tmp_path):
    teacher = family["teacher"]
    run = _mask_run(teacher, tmp_path / "mask-run")
    both = tmp_path / "both.json"
    InterventionSpec.from_dict({"heads": [{"layer": 1, "head": 2}, {"layer": 0, "head": 0}],
                                "mask": str(run / "mask.safetensors")}).save(both)
    variants = model_variants([str(teacher), f"{teacher}+{run}", f"{teacher}+{run / 'mask.safetensors'}",
                               f"{teacher}+{both}"], ["t", "run", "file", "both"])
    assert variants[1].spec == variants[2].spec == InterventionSpec(mask=str((run / "mask.safetensors").resolve()))
    assert parse_variant(f"{teacher}+{run}").label == f"{teacher.name}+mask-run"
    assert parse_variant(f"{teacher}+{family['spec']}").label == f"{teacher.name}+heads"
    from bias_lab.compression.compare import model_facts

    loaded = load_model(teacher, device="cpu")
    kept = [model_facts(loaded, v, CompareSettings(benchmarks=("perplexity",), timing_repeats=0))["heads_kept"]
            for v in variants]
    assert kept == [8, 7, 7, 6]  # the mask's head and the spec's overlap: counted once
    with pytest.raises(BiasLabError, match="labelled"):
        model_variants([str(teacher), str(family["student"])], ["same", "same"])
    with pytest.raises(BiasLabError, match="does not exist"):
        parse_variant(f"{teacher}+{tmp_path / 'none.json'}")
    with pytest.raises(BiasLabError, match="not a finished mask-training run"):
        parse_variant(f"{teacher}+{tmp_path}")
    assert ModelVariant.from_config(variants[3].to_config()) == variants[3]


def test_on_the_shared_stereoset_and_winobias_data(family, tmp_path):
    """The real data's loaders feed the comparison: counts add up to the examples and pairs scored."""
    stereoset, winobias = shared_path("data", "stereoset", "dev_derived.json"), shared_path("data", "winobias")
    settings = CompareSettings(benchmarks=("stereoset", "winobias"), data={"stereoset": str(stereoset),
                                                                           "winobias": str(winobias)},
                               limit=12, device="cpu", **TIMING)
    result = compare_models(family["models"][:2], tmp_path / "run", settings)
    for _, row in result.table.iterrows():
        assert sum(row[c] for c in result.stereoset_choice_columns()) == 12
        assert row["winobias_pairs"] == 12 and 0 <= row["winobias_anti_choices"] <= 12


def test_timing_is_the_median_pass_per_token_under_the_intervention(tiny_loaded, monkeypatch):
    """A fake clock makes the passes last 3, 1 and 1.5 s: the figure is the median (1.5 s) over the
    batch's tokens, in ms; every pass (warm-up included) sees the ablated head's output zeroed; a
    masked LM's batch carries its mask token in the middle."""
    import bias_lab.compression.timing as timing

    loaded = tiny_loaded("gpt2")
    batch = timing.timing_batch(loaded, 3, 10_000)
    assert batch["input_ids"].shape == (3, loaded.model.config.n_positions)  # capped at the model's positions
    assert torch.equal(batch["input_ids"], timing.timing_batch(loaded, 3, 10_000)["input_ids"])  # fixed
    masked = tiny_loaded("bert")
    assert (timing.timing_batch(masked, 2, 9)["input_ids"][:, 4] == masked.mask_token_id).all()

    ticks = iter([0.0, 3.0, 10.0, 11.0, 20.0, 21.5])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    size = loaded.head_size
    seen = []
    # a forward hook sees the projection's input after every pre-hook, the intervention's included
    handle = loaded.adapter.attn_out(1).register_forward_hook(
        lambda module, args, output: seen.append(bool((args[0][..., 2 * size:3 * size] == 0).all())))
    try:
        value = timing.inference_ms_per_token(loaded, InterventionSpec.from_dict({"heads": [{"layer": 1, "head": 2}]}),
                                              batch=2, length=5, repeats=3)
    finally:
        handle.remove()
    assert value == pytest.approx(1000.0 * 1.5 / (2 * 5))
    assert seen == [True] * (timing.WARM_UP + 3)
    assert np.isnan(timing.inference_ms_per_token(loaded, repeats=0))
