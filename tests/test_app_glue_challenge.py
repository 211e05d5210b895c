"""The pages' share of GLUE and challenge sets (AppTest): the Pruning masks page shows each mask's
GLUE scores beside its densities and, for a classifier, the challenge-set table and chart with the
on/off switch; the Trade-off page offers the GLUE average as its performance axis."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from bias_lab.interventions import InterventionSpec
from bias_lab.models import load_model

from .app_view import shown_table, shown_text
from .finetune_fixtures import nli_classifier, random_mask, stored_glue_run, write_jsonl  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


def _mask(model_dir, path, seed=0):
    random_mask(load_model(model_dir, device="cpu"), keep=0.5, seed=seed).save(path)
    return path.resolve()


def test_the_pruning_masks_page_shows_glue_per_task_beside_the_densities(monkeypatch, tiny_model_dir, tmp_path):
    model = tiny_model_dir("bert")
    mask = _mask(model, tmp_path / "random.safetensors")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(model))
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=120)
    app.session_state["masks_path"] = str(mask)
    app.run()
    assert not app.exception and not app.error
    assert "No GLUE scores for these masks yet" in shown_text(app)
    stored_glue_run(str(model), {None: [80.0, 70.0], mask: [70.0, 62.0]})
    app.run()
    assert not app.exception and not app.error
    table = shown_table(app, "masks_glue")
    assert list(table["name"]) == ["unmasked", "random"]
    assert list(table["average"]) == [75.0, 66.0] and list(table["sst2"]) == [80.0, 70.0]
    assert list(table["density"]) == [100.0, 70.0]
    assert "WNLI is left out of the average" in shown_text(app)


def test_the_pruning_masks_page_shows_challenge_sets_with_the_on_off_switch(monkeypatch, nli_classifier, tmp_path):
    from bias_lab.finetune.challenge_run import run_challenge

    mask = _mask(nli_classifier, tmp_path / "hans-mask.safetensors", seed=1)
    hans = write_jsonl(tmp_path / "hans.jsonl", [{"premise": "the man works .", "hypothesis": h, "label": label}
                                                 for h, label in (("the man works .", 0), ("the man is here .", 1),
                                                                  ("a man works .", 0), ("the man sleeps .", 1))])
    run_challenge(str(nli_classifier), [mask], ["hans"], tmp_path / "run", data={"hans": hans}, device="cpu")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(nli_classifier))
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=120)
    app.session_state["masks_path"] = str(mask)
    app.run()
    assert not app.exception and not app.error
    on = shown_table(app, "masks_challenge")
    assert list(on.columns) == ["set", "split", "unmasked", "hans-mask", "best"]
    assert list(on["split"]) == ["all", "entailment", "non-entailment"]
    assert "Best per set: hans:" in shown_text(app)
    app.toggle(key="masks_challenge_on").set_value(False).run()
    assert not app.exception and not app.error
    off = shown_table(app, "masks_challenge")
    assert list(off["hans-mask"]) == list(off["unmasked"])  # switched off: the classifier's own accuracy


def test_the_trade_off_page_offers_the_glue_average(monkeypatch, tiny_model_dir, tmp_path):
    from .test_page_logic import _stereoset_summary, _stored_evaluation

    model = str(tiny_model_dir("bert"))
    mask = tmp_path / "m.safetensors"
    mask.write_bytes(b"x")
    stored_glue_run(model, {None: [80.0, 70.0], mask: [70.0, 60.0]})
    _stored_evaluation("stereoset", _stereoset_summary(60.0, 90.0), {"data_label": "dev, first 2"}, model=model)
    _stored_evaluation("stereoset", _stereoset_summary(54.0, 88.0),
                       {"data_label": "dev, first 2", "method": "mask",
                        "intervention": InterventionSpec(mask=str(mask)).to_dict()}, model=model)
    monkeypatch.setenv("BIAS_LAB_MODEL", model)
    app = AppTest.from_file(str(ROOT / "views" / "7_Trade_off.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    performance = app.selectbox(key="trade_performance")
    assert "GLUE average (glue-average)" in performance.options
    performance.select("glue-average").run()
    assert not app.exception and not app.error
    points = shown_table(app, "trade_table")
    assert sorted(points["performance"]) == [65.0, 75.0] and sorted(points["method"]) == ["mask", "original"]
    figure = app.get("plotly_chart")[0].proto.spec
    assert "GLUE average (higher is better)" in figure
