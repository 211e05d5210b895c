import json

import pytest

from bias_lab.cli import main
from bias_lab.evaluation.record import EvaluationResult
from bias_lab.interventions import InterventionSpec, NeuronEdit
from bias_lab.store import RunStore

from .conftest import shared_path
from .test_evaluation import STEREOSET


@pytest.fixture
def stereoset_file(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    return path


def test_stereoset_json_contract_and_run(capsys, tiny_model_dir, stereoset_file, tmp_path):
    out = tmp_path / "ss"
    code = main(["evaluate", "stereoset", "--model", str(tiny_model_dir("bert")), "--data", str(stereoset_file),
                 "--out", str(out), "--batch-size", "4"])
    assert code == 0, capsys.readouterr().err
    stored = EvaluationResult.load(out)
    summary = stored.summary
    assert set(summary) == {"intrasentence"}
    assert set(summary["intrasentence"]) == {"overall", "gender", "profession"}
    assert set(summary["intrasentence"]["overall"]) == {"ss", "lms", "icat", "count"}
    assert summary["intrasentence"]["overall"]["count"] == 2
    assert len(stored.items) == 6
    record = RunStore().list(kind="evaluate")[0]
    assert record.status == "complete" and "ss" in record.summary and record.config["benchmark"] == "stereoset"


def test_intervention_file_and_intersentence_for_causal(capsys, tiny_model_dir, stereoset_file, tmp_path):
    spec = tmp_path / "spec.json"
    InterventionSpec((NeuronEdit(1, 3, 0.0),), position="last").save(spec)
    out = tmp_path / "ss"
    code = main(["evaluate", "stereoset", "--model", str(tiny_model_dir("gpt2")), "--data", str(stereoset_file),
                 "--intersentence", "--intervention", str(spec), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert set(EvaluationResult.load(out).summary) == {"intrasentence", "intersentence"}
    assert RunStore().list(kind="evaluate")[0].config["intervention"]["position"] == "last"


def test_crows_and_winobias_and_perplexity(capsys, tiny_model_dir, tmp_path):
    crows = tmp_path / "crows.csv"
    crows.write_text("sent_more,sent_less,stereo_antistereo,bias_type\n"
                     "the poor man is lazy .,the rich man is lazy .,stereo,socioeconomic\n"
                     "she cooks food .,he cooks food .,antistereo,gender\n")
    out = tmp_path / "crows"
    assert main(["evaluate", "crows", "--model", str(tiny_model_dir("roberta")), "--data", str(crows),
                 "--out", str(out)]) == 0
    summary = EvaluationResult.load(out).summary
    assert set(summary) == {"overall", "by_bias_type"}
    assert set(summary["overall"]) >= {"metric", "count", "neutral"} and set(summary["by_bias_type"]) == {"gender", "socioeconomic"}
    text = tmp_path / "text.txt"
    text.write_text("the doctor is here .\n\nthis young person is very kind .\n")
    out = tmp_path / "ppl"
    assert main(["evaluate", "perplexity", "--model", str(tiny_model_dir("llama")), "--data", str(text),
                 "--out", str(out), "--max-length", "8", "--stride", "4"]) == 0
    assert EvaluationResult.load(out).summary["perplexity"] > 1
    capsys.readouterr()


def test_seat_contract_on_real_tests(capsys, tiny_model_dir, tmp_path):
    out = tmp_path / "seat"
    code = main(["evaluate", "seat", "--model", str(tiny_model_dir("bert", "encoder")), "--data",
                 str(shared_path("data", "seat")), "--tests", "sent-weat6", "sent-weat7", "--permutations", "2000",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    tests = EvaluationResult.load(out).summary["tests"]
    assert list(tests) == ["sent-weat6", "sent-weat7"]
    assert set(tests["sent-weat6"]) == {"effect_size", "p_value", "n_target", "n_attribute"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["stereoset", "--data", "/no/such/dev.json"], "StereoSet file '/no/such/dev.json' does not exist"),
        (["seat"], "SEAT needs its data: a folder"),
        (["winobias", "--data", "/nope"], "WinoBias folder '/nope' does not exist"),
        (["perplexity", "--data", "/tmp/none.txt"], "text file '/tmp/none.txt' does not exist"),
        (["stereoset", "--batch-size", "0"], "--batch-size 0 must be at least 1"),
        (["crows", "--intervention", "/no/spec.json"], "intervention spec file '/no/spec.json' does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tiny_model_dir, tmp_path, argv, message):
    code = main(["evaluate", argv[0], "--model", str(tiny_model_dir("bert")), "--out", str(tmp_path / "o"), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_out_of_range_intervention_is_refused(capsys, tiny_model_dir, stereoset_file, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"heads": [{"layer": 0, "head": 9}]}))
    code = main(["evaluate", "stereoset", "--model", str(tiny_model_dir("bert")), "--data", str(stereoset_file),
                 "--intervention", str(spec), "--out", str(tmp_path / "o")])
    assert code == 2 and "head 9 is out of range, valid heads are 0–3" in capsys.readouterr().err


def test_bert_intersentence_uses_the_next_sentence_head(capsys, tiny_model_dir, stereoset_file, tmp_path):
    import torch
    from transformers import BertForNextSentencePrediction

    folder = tiny_model_dir("bert", "pretraining")
    out = tmp_path / "ss"
    code = main(["evaluate", "stereoset", "--model", str(folder), "--data", str(stereoset_file), "--intersentence",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    stored = EvaluationResult.load(out)
    assert set(stored.summary) == {"intrasentence", "intersentence"}
    inter = stored.items.query("task == 'intersentence'")
    nsp = BertForNextSentencePrediction.from_pretrained(folder).eval()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    row = inter.iloc[0]
    with torch.no_grad():
        expected = nsp(**tokenizer(row["context"], row["sentence"], return_tensors="pt")).logits.softmax(-1)[0, 0]
    assert row["score"] == pytest.approx(float(expected), rel=1e-5)
    code = main(["evaluate", "stereoset", "--model", str(tiny_model_dir("bert")), "--data", str(stereoset_file),
                 "--intersentence", "--out", str(tmp_path / "ss2")])
    assert code == 2 and "no trained next-sentence head" in capsys.readouterr().err


def test_out_defaults_to_a_run_folder_in_the_store(capsys, tiny_model_dir, stereoset_file):
    code = main(["evaluate", "stereoset", "--model", str(tiny_model_dir("bert")), "--data", str(stereoset_file)])
    out = capsys.readouterr().out
    assert code == 0
    record = RunStore().list(kind="evaluate")[0]
    assert out.splitlines()[-1] == f"→ {record.artifact_dir} (run {record.id})"
    assert EvaluationResult.load(record.artifact_dir).summary["intrasentence"]["overall"]["count"] == 2


def test_every_benchmark_of_the_table_is_a_choice(capsys, tiny_model_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the doctor is here and she is very kind .\nthis young person is honest .\n")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "p0", "prompt": "[MASK] is a doctor .", "pair": ["he", "she"]}) + "\n")
    model = str(tiny_model_dir("bert"))
    assert main(["evaluate", "mlm-loss", "--model", model, "--data", str(text), "--limit", "1", "--seed", "3",
                 "--out", str(tmp_path / "mlm")]) == 0
    assert capsys.readouterr().out.startswith("masked-LM loss ")
    stored = EvaluationResult.load(tmp_path / "mlm")
    assert stored.summary["texts"] == 1 and stored.config["options"] == {"seed": 3} and stored.headline["performance"] > 0
    assert main(["evaluate", "ig2-gap", "--model", model, "--data", str(prompts), "--out", str(tmp_path / "gap")]) == 0
    assert capsys.readouterr().out.startswith("mean |P(d1) − P(d2)| ")
    assert EvaluationResult.load(tmp_path / "gap").summary["prompts"] == 1
