"""Issue 10 (user test of the dashboard): the Compare and Pruning masks pages against tiny models."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from .app_view import density_expanders, has_table, shown_table
from .app_view import shown_text as page_text
from .conftest import ROOT

CORPUS = [f"the {w} is here and works ." for w in ["he", "she", "nurse", "doctor", "man", "woman"] * 10]


# --- Compare -------------------------------------------------------------------------------------

@pytest.fixture
def ig2_runs(tiny_model_dir, tmp_path, monkeypatch):
    from bias_lab.neurons import IG2Settings
    from bias_lab.neurons.run import run_ig2
    from bias_lab.models import load_model
    from bias_lab.neurons.prompts import ig2_prompts

    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    results = {}
    for family in ("bert", "distilbert"):
        loaded = load_model(tiny_model_dir(family), device="cpu")
        results[family] = run_ig2(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=2),
                                  tmp_path / family, IG2Settings(steps=3))
    return results


def test_compare_labels_runs_and_defaults_to_two_different_ones(ig2_runs, tiny_model_dir):
    from bias_lab.neurons import select_bias_neurons

    app = AppTest.from_file(str(ROOT / "views" / "6_Compare.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    first, second = app.selectbox(key="cmp_first"), app.selectbox(key="cmp_second")
    assert first.value != second.value
    models = {tiny_model_dir(f).name for f in ("bert", "distilbert")}
    assert {first.value.split(" · ")[0], second.value.split(" · ")[0]} == models
    for label in first.options:
        assert "gender N female–male" in label and "target abs" in label and "34 prompts" in label
        assert re.search(r"\b\d+ prompts\b", label)
    # the overlap shown is the overlap of the two runs' bias-neuron sets (first and second as chosen)
    by_model = {tiny_model_dir(family).name: set(zip(t["layer"], t["neuron"])) for family, t in
                ((family, select_bias_neurons(r.scores, r.prompts)) for family, r in ig2_runs.items())}
    sets = [by_model[box.value.split(" · ")[0]] for box in (first, second)]
    shared, union = len(sets[0] & sets[1]), len(sets[0] | sets[1])
    lines = [m.value for m in app.markdown]
    if union:
        assert f"shared bias neurons: {shared} of {union} (Jaccard {shared / union:.2f}; first run {len(sets[0])}, " \
               f"second run {len(sets[1])})" in lines, lines
    else:
        assert "neither run has bias neurons after selection: no overlap to measure" in lines


def test_compare_same_ig2_run_on_both_sides_is_an_info_not_a_traceback(ig2_runs):
    app = AppTest.from_file(str(ROOT / "views" / "6_Compare.py"), default_timeout=120).run()
    app.selectbox(key="cmp_second").set_value(app.selectbox(key="cmp_first").value).run()
    assert not app.exception and not app.error
    assert any("the same run on both sides: choose two different runs" in i.value for i in app.info)
    app.selectbox(key="cmp_second").set_value(app.selectbox(key="cmp_second").options[1]).run()
    assert not app.exception and not any("same run" in i.value for i in app.info)


def _heads_run(folder: Path, table: pd.DataFrame, model: str, bias: str | None):
    from bias_lab.heads.runs import HeadScoresResult
    from bias_lab.store import RunStore

    run = RunStore().start("heads", {"perf": "mlm-loss", "perf_data": "text.txt", "bias": bias,
                                     "bias_data": "p.jsonl" if bias else None, "limit": None, "seed": 0},
                           model=model, artifact_dir=folder)
    with run:
        HeadScoresResult(run.dir, table, {"id": run.id, "kind": "heads", "config": run.record.config}).save(run.dir)
        run.complete({"heads": len(table)})
    return run.id


@pytest.fixture
def heads_runs(tiny_model_dir, tmp_path, monkeypatch):
    """Four head-scoring runs of the same model: a real one without bias scores (NaN bias columns),
    one with bias scores, one whose bias_delta is constant, one that scored a single head."""
    from bias_lab.heads.ablation import score_heads
    from bias_lab.heads.metrics import perf_metric
    from bias_lab.models import load_model

    folder = tiny_model_dir("bert")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(folder))
    loaded = load_model(folder, device="cpu")
    real = score_heads(loaded, perf_metric(loaded, "mlm-loss", CORPUS[:6])).table
    assert real["bias_delta"].isna().all()
    rng = np.random.default_rng(0)
    scored = real.assign(bias=rng.normal(size=len(real)), bias_delta=rng.normal(size=len(real)),
                         perf_delta=real["perf_delta"] + rng.normal(scale=0.01, size=len(real)))
    ids = {"no_bias": _heads_run(tmp_path / "h_no_bias", real, str(folder), None)}
    ids["scored"] = _heads_run(tmp_path / "h_scored", scored, str(folder), "ig2-gap")
    ids["constant"] = _heads_run(tmp_path / "h_constant", scored.assign(bias_delta=0.25), str(folder), "ig2-gap")
    ids["single"] = _heads_run(tmp_path / "h_single", scored.iloc[:1], str(folder), "ig2-gap")
    return {"ids": ids, "tables": {"no_bias": real, "scored": scored}}


def _choose(app, key, run_id):
    box = app.selectbox(key=key)
    box.set_value(next(o for o in box.options if o.endswith(run_id)))


def test_compare_head_runs_without_bias_scores_say_why_not_nan(heads_runs):
    ids = heads_runs["ids"]
    app = AppTest.from_file(str(ROOT / "views" / "6_Compare.py"), default_timeout=120).run()
    assert not app.exception
    assert app.selectbox(key="cmp_heads_first").value != app.selectbox(key="cmp_heads_second").value
    labels = app.selectbox(key="cmp_heads_first").options
    assert any("no bias scores" in o and o.endswith(ids["no_bias"]) for o in labels)
    assert any("bias ig2-gap" in o and "perf mlm-loss" in o and o.endswith(ids["scored"]) for o in labels)

    _choose(app, "cmp_heads_first", ids["no_bias"])
    _choose(app, "cmp_heads_second", ids["scored"])
    app.selectbox(key="cmp_heads_column").set_value("bias_delta")
    app.run()
    assert not app.exception and not app.error
    assert any(f"first run ({ids['no_bias']}) has no bias scores" in w.value for w in app.warning)
    assert not app.metric and not has_table(app, "cmp_heads_correlation")
    assert "nan" not in page_text(app).lower().replace("nanc", "")

    # performance scores exist in both: a real correlation, the one pandas computes
    app.selectbox(key="cmp_heads_column").set_value("perf_delta").run()
    assert not app.exception and not app.warning
    tables = heads_runs["tables"]
    expected = tables["no_bias"]["perf_delta"].corr(tables["scored"]["perf_delta"])
    shown = shown_table(app, "cmp_heads_correlation")
    assert shown["pearson_r"].tolist() == pytest.approx([expected])
    assert shown["score"].tolist() == ["perf_delta"] and shown["shared_heads"].tolist() == [8]
    assert app.metric[0].value == f"{expected:.3f}"
    assert "over 8 shared heads" in app.metric[0].label


def test_compare_head_correlation_that_cannot_be_computed_says_why(heads_runs):
    ids = heads_runs["ids"]
    app = AppTest.from_file(str(ROOT / "views" / "6_Compare.py"), default_timeout=120).run()
    _choose(app, "cmp_heads_first", ids["scored"])
    _choose(app, "cmp_heads_second", ids["constant"])
    app.selectbox(key="cmp_heads_column").set_value("bias_delta")
    app.run()
    assert not app.exception and not app.error
    assert any(f"same for every shared head in the second run ({ids['constant']})" in w.value for w in app.warning)
    assert not app.metric and not has_table(app, "cmp_heads_correlation")
    assert "nan" not in page_text(app).lower()

    _choose(app, "cmp_heads_second", ids["single"])
    app.run()
    assert not app.exception and any("at least 2 heads scored in both runs, they share 1" in w.value
                                     for w in app.warning)

    _choose(app, "cmp_heads_second", ids["scored"])
    app.run()
    assert not app.exception and not app.error
    assert any("the same run on both sides: choose two different runs" in i.value for i in app.info)
    assert not app.metric and not has_table(app, "cmp_heads_correlation")


# --- Pruning masks -------------------------------------------------------------------------------

def _learn(app):
    app.run()
    assert not app.exception
    app.button(key="masks_learn").click().run()
    assert not app.exception
    return app


def _masks_page(corpus: Path, **state):
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=180)
    app.session_state["masks_corpus"] = str(corpus)
    app.session_state["masks_block"] = "head"
    for key, value in state.items():
        app.session_state[key] = value
    return app


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(CORPUS) + "\n")
    return path


def _output_folder(app) -> str:
    line = next(c.value for c in app.caption if c.value.startswith("output run folder:"))
    return line.split("`")[1]


def test_mask_output_folder_is_named_by_model_and_settings(monkeypatch, tiny_model_dir, corpus):
    small, deep = tiny_model_dir("bert"), tiny_model_dir("bert", layers=3)
    monkeypatch.setenv("BIAS_LAB_MODEL", str(small))
    app = _masks_page(corpus).run()
    assert not app.exception and not app.error
    folder = _output_folder(app)
    name = Path(folder).name
    assert small.name in name and "-head-" in name and re.search(r"-[0-9a-f]{8}$", name)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", name)
    for key in ("masks_epochs", "masks_lr", "masks_threshold", "masks_l1", "masks_batch", "masks_limit"):
        assert app.number_input(key=key) is not None
    app.number_input(key="masks_l1").set_value(0.5).run()
    assert _output_folder(app) != folder  # a setting that is not in the readable part still changes the hash
    app.number_input(key="masks_l1").set_value(0.0).run()
    assert _output_folder(app) == folder
    # another model: another folder
    monkeypatch.setenv("BIAS_LAB_MODEL", str(deep))
    other = _masks_page(corpus).run()
    assert not other.exception and _output_folder(other) != folder and deep.name in _output_folder(other)
    # a typed folder is used as given
    other.text_input(key="masks_out").input(str(corpus.parent / "my-mask")).run()
    assert _output_folder(other) == str(corpus.parent / "my-mask")


def test_learning_masks_for_two_models_and_the_no_pruning_hint(monkeypatch, tiny_model_dir, corpus):
    from bias_lab.store import RunStore

    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    first = _learn(_masks_page(corpus))
    assert not first.error and "mask written to" in first.success[0].value
    # the defaults (a few steps at learning rate 0.01) prune nothing: the page says so and what to do
    assert any(w.value.startswith("the mask keeps 100 % of the weights: train longer, raise the learning rate or "
                                  "the threshold") for w in first.warning)
    assert "keeps 100.0 % of the weights" in first.success[0].value
    # a second model with the same settings is not blocked by the first model's run folder
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert", layers=3)))
    second = _learn(_masks_page(corpus))
    assert not second.error, [e.value for e in second.error]
    assert "mask written to" in second.success[0].value
    runs = RunStore().list(kind="prune", status="complete")
    assert len(runs) == 2 and len({r.artifact_dir for r in runs}) == 2 and len({r.model for r in runs}) == 2
    # stronger settings from the controls prune, and reach the stored run's config
    third = _learn(_masks_page(corpus, masks_lr=2.0, masks_threshold=0.5, masks_epochs=4, masks_batch=4,
                               masks_limit=40))
    assert not third.error and "mask written to" in third.success[0].value and not third.warning
    kept = float(re.search(r"keeps ([\d.]+) %", third.success[0].value).group(1))
    assert kept < 100.0
    config = next(r.config for r in RunStore().list(kind="prune", status="complete") if r.config["lr"] == 2.0)
    assert (config["threshold"], config["epochs"], config["batch_size"], config["limit"]) == (0.5, 4, 4, 40)


def _stored_mask(tiny_model_dir, tmp_path, name, **sizes):
    from bias_lab.models import load_model
    from bias_lab.pruning.kaneko import KanekoObjective
    from bias_lab.pruning.train import PruneSettings, train_mask

    loaded = load_model(tiny_model_dir("bert", **sizes), device="cpu")
    return train_mask(loaded, KanekoObjective(loaded, CORPUS), tmp_path / name,
                      PruneSettings(block="head", lr=0.5, batch_size=8)).mask_path


def test_masks_of_other_model_shapes_are_listed_apart_with_the_reason(monkeypatch, tiny_model_dir, tmp_path):
    from bias_lab.store import RunStore

    fits = _stored_mask(tiny_model_dir, tmp_path, "fits")
    other = _stored_mask(tiny_model_dir, tmp_path, "other", layers=3)
    other_id = RunStore().get(str(other.parent)).id
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    options = app.multiselect(key="masks_runs").options
    assert len(options) == 1 and RunStore().get(str(fits.parent)).id in options[0]
    assert len(density_expanders(app)) == 1
    assert [e.label for e in app.expander if "made for other models" in e.label] == [
        "1 stored mask made for other models (cannot be used with the loaded model)"]
    reasons = [c.value for c in app.caption if c.value.startswith(f"mask {other_id}")]
    assert len(reasons) == 1 and "made for 3 layers" in reasons[0] and "the loaded model has 2" in reasons[0]
    assert any("1 stored mask made for other models" in e.label for e in app.expander)
    # a typed path of a mask that does not fit: one error line that names the file
    app.text_input(key="masks_path").input(str(other)).run()
    assert not app.exception and len(app.error) == 1
    assert str(other) in app.error[0].value and "made for 3 layers, the loaded model has 2" in app.error[0].value
    assert len(density_expanders(app)) == 1
    # a typed path that is no mask at all: the error names it too
    app.text_input(key="masks_path").input(str(tmp_path / "nothing.safetensors")).run()
    assert not app.exception and len(app.error) == 1 and str(tmp_path / "nothing.safetensors") in app.error[0].value
