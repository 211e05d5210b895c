"""Knowledge distillation: the loss against a hand computation, the student's initialisation against
the teacher's weights, learning on a trained tiny teacher, exact resume, and bad input."""

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bias_lab.compression.corpus import mask_tokens, special_tokens_around, tokenise_blocks
from bias_lab.compression.distill import DistillResult, DistillSettings, distill, logits_and_hidden
from bias_lab.compression.losses import IGNORE, LossWeights, distillation_loss
from bias_lab.compression.student import build_student, evenly_spread
from bias_lab.errors import BiasLabError, Cancelled
from bias_lab.models import load_model
from bias_lab.progress import CancelToken
from bias_lab.tiny import build_tiny_model, tiny_corpus
from tests.conftest import ALL_FAMILIES

SMALL = dict(max_length=32, batch_size=8)


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory):
    """Tiny 4-layer models with the tiny word list as vocabulary (a small LM head keeps training fast)."""
    built = {}

    def build(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(family, tmp_path_factory.mktemp(f"small-{family}"), layers=4)
        return built[family]

    return build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(tiny_corpus(2)) + "\n", encoding="utf-8")
    return path


def _teacher(small_model_dir, family: str):
    return load_model(small_model_dir(family), device="cpu")


# --- the loss ------------------------------------------------------------------------------------

def _softmax(row, t=1.0):
    exps = [math.exp(v / t) for v in row]
    return [e / sum(exps) for e in exps]


def test_loss_terms_equal_a_hand_computation():
    student = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]
    teacher = [[2.0, 0.5, -0.5], [0.0, 1.0, 1.0]]
    labels = [2, IGNORE]
    s_hidden = [[1.0, 2.0], [0.0, 1.0]]
    t_hidden = [[2.0, 1.0], [1.0, 1.0]]
    t_ = 2.0
    kl = 0.0
    for s_row, t_row in zip(student, teacher):
        p, q = _softmax(t_row, t_), _softmax(s_row, t_)
        kl += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    kl = kl / 2 * t_ ** 2
    lm = -math.log(_softmax(student[0])[2])  # the one labelled position
    cos = 0.0
    for a, b in zip(s_hidden, t_hidden):
        cos += 1 - sum(x * y for x, y in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))
    cos /= 2
    weights = LossWeights(temperature=t_, alpha_ce=5.0, alpha_lm=2.0, alpha_cos=1.0)
    tensor = torch.tensor
    parts = distillation_loss(weights, student_logits=tensor(student), teacher_logits=tensor(teacher),
                              lm_logits=tensor(student), labels=tensor(labels), student_hidden=tensor(s_hidden),
                              teacher_hidden=tensor(t_hidden))
    assert float(parts["ce"]) == pytest.approx(kl, rel=1e-5)
    assert float(parts["lm"]) == pytest.approx(lm, rel=1e-5)
    assert float(parts["cos"]) == pytest.approx(cos, rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(5 * kl + 2 * lm + 1 * cos, rel=1e-5)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_lm_head_at_chosen_positions_equals_the_full_pass(tiny_loaded, family):
    loaded = tiny_loaded(family)
    ids = torch.randint(5, 60, (2, 9), generator=torch.Generator().manual_seed(0))
    rows, columns = torch.tensor([0, 1, 1]), torch.tensor([3, 0, 8])
    with torch.no_grad():
        full = loaded.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        logits, hidden = logits_and_hidden(loaded.model, ids, rows, columns)
    torch.testing.assert_close(logits, full.logits[rows, columns], rtol=1e-5, atol=1e-5)
    last = full.hidden_states[-1]
    if family not in ("gpt2", "gpt-neo", "llama", "modernbert"):  # these report the final norm's output last
        torch.testing.assert_close(hidden, last[rows, columns], rtol=1e-5, atol=1e-5)


# --- the corpus ----------------------------------------------------------------------------------

def test_blocks_carry_the_special_tokens_and_masking_skips_them(tiny_loaded):
    loaded = tiny_loaded("bert")
    blocks = tokenise_blocks(loaded, tiny_corpus(1), 16)
    tokenizer = loaded.tokenizer
    assert blocks.shape[1] == 16
    assert (blocks[:, 0] == tokenizer.cls_token_id).all() and (blocks[:, -1] == tokenizer.sep_token_id).all()
    assert special_tokens_around(tiny_loaded("gpt2").tokenizer) == ([], [])
    inputs, labels = mask_tokens(blocks, tokenizer, torch.Generator().manual_seed(0))
    chosen = labels != IGNORE
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert 0.10 < chosen[:, 1:-1].float().mean() < 0.20
    assert (labels[chosen] == blocks[chosen]).all()
    assert (inputs[~chosen] == blocks[~chosen]).all()
    masked_share = (inputs[chosen] == tokenizer.mask_token_id).float().mean()
    assert 0.65 < masked_share < 0.95


def test_corpus_too_small_for_a_block_is_refused(tiny_loaded):
    with pytest.raises(BiasLabError, match="fewer than one block"):
        tokenise_blocks(tiny_loaded("bert"), ["the man"], 32)


# --- the student's initialisation -----------------------------------------------------------------

def test_evenly_spread_layers_are_distilberts_for_twelve_to_six():
    assert evenly_spread(12, 6) == [0, 2, 4, 7, 9, 11]
    assert evenly_spread(4, 2) == [0, 3]
    assert evenly_spread(5, 5) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_zero_steps_save_a_student_whose_layers_are_the_chosen_teacher_layers(small_model_dir, corpus, tmp_path,
                                                                             family):
    teacher = _teacher(small_model_dir, family)
    result = distill(teacher, corpus, tmp_path / "run", DistillSettings(layers=(1, 3), steps=0, **SMALL))
    student = load_model(tmp_path / "run", device="cpu")  # the run folder is a model source
    assert student.num_layers == 2 and len(result.history) == 0
    teacher_state = teacher.model.state_dict()
    for j, i in enumerate((1, 3)):
        for name, value in student.adapter.layer(j).state_dict().items():
            assert torch.equal(value, teacher.adapter.layer(i).state_dict()[name]), (j, name)
    layer_prefix = {n for n, m in teacher.model.named_modules() if m is teacher.adapter.layer_modules()}.pop()
    for name, value in student.model.state_dict().items():
        if not name.startswith(layer_prefix + "."):
            assert torch.equal(value, teacher_state[name]), name


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_a_narrower_student_equals_the_teacher_with_the_weakest_neurons_zeroed(tiny_loaded, family):
    teacher = tiny_loaded(family)
    width = teacher.ffn_width // 2
    student = build_student(teacher, list(range(teacher.num_layers)), ffn_width=width).eval()
    edited = copy.deepcopy(teacher.model).eval()
    for layer in range(teacher.num_layers):
        weight = teacher.adapter.ffn_out(layer).weight.detach()
        conv1d = type(teacher.adapter.ffn_out(layer)).__name__ == "Conv1D"  # GPT-2 stores [in, out]
        norms = weight.norm(dim=1) if conv1d else weight.norm(dim=0)
        dropped = torch.argsort(norms)[: teacher.ffn_width - width]
        target = edited.base_model.get_submodule(teacher.adapter.family.layers)[layer].get_submodule(
            teacher.adapter.family.ffn_out)
        with torch.no_grad():
            if conv1d:
                target.weight[dropped, :] = 0
            else:
                target.weight[:, dropped] = 0
    ids = torch.randint(5, 60, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(student(input_ids=ids).logits, edited(input_ids=ids).logits, rtol=1e-4, atol=1e-5)


def _without_dropout(folder: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(folder, target)
    config = json.loads((target / "config.json").read_text())
    for key, value in list(config.items()):
        if ("dropout" in key or "pdrop" in key) and isinstance(value, (int, float)):
            config[key] = 0.0
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_a_student_with_every_teacher_layer_has_kl_zero_at_step_zero(small_model_dir, corpus, tmp_path, family):
    folder = _without_dropout(small_model_dir(family), tmp_path / "teacher")
    teacher = load_model(folder, device="cpu")
    result = distill(teacher, corpus, tmp_path / "run",
                     DistillSettings(layers=(0, 1, 2, 3), steps=1, alpha_lm=0.0, alpha_cos=0.0, **SMALL))
    assert abs(result.history["ce"].iloc[0]) < 1e-6
    assert result.summary["kl_before"] < 1e-6


# --- learning ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_teacher(small_model_dir, tmp_path_factory):
    """A tiny BERT trained briefly with MLM on the corpus, so that its predictions are peaked and
    removing layers changes them (a random teacher predicts nearly uniformly)."""
    teacher = load_model(small_model_dir("bert"), device="cpu")
    model = copy.deepcopy(teacher.model).train()
    blocks = tokenise_blocks(teacher, tiny_corpus(3), 32)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        inputs, labels = mask_tokens(blocks[torch.randint(len(blocks), (16,), generator=generator)],
                                     teacher.tokenizer, generator)
        loss = model(input_ids=inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("trained-teacher")
    model.eval().save_pretrained(folder)
    teacher.tokenizer.save_pretrained(folder)
    return load_model(folder, device="cpu")


def test_distillation_brings_the_student_close_to_the_teacher(trained_teacher, corpus, tmp_path):
    settings = dict(num_layers=2, steps=80, lr=2e-3, **SMALL)
    copied = distill(trained_teacher, corpus, tmp_path / "copied", DistillSettings(**settings)).summary
    random = distill(trained_teacher, corpus, tmp_path / "random", DistillSettings(init="random", **settings)).summary
    assert copied["kl_before"] > 0.01
    assert copied["kl_after"] < 0.4 * copied["kl_before"]
    assert copied["kl_after"] < random["kl_after"]
    assert "held-out" in copied["kl_measured_on"]
    assert copied["student_parameters"] < copied["teacher_parameters"]


# --- resuming ------------------------------------------------------------------------------------

class _StopAt:
    def __init__(self, step: int, how: str, token: CancelToken):
        self.step, self.how, self.token = step, how, token

    def __call__(self, done, total, message=""):
        if done == self.step:
            if self.how == "cancel":
                self.token.cancel()
            else:
                raise RuntimeError("power cut")


@pytest.mark.parametrize("how", ["cancel", "crash"])
def test_a_resumed_run_has_the_history_and_weights_of_an_uninterrupted_one(small_model_dir, corpus, tmp_path, how):
    teacher = _teacher(small_model_dir, "bert")
    settings = DistillSettings(num_layers=2, steps=14, checkpoint_every=4, accumulate=2, **SMALL)
    whole = distill(teacher, corpus, tmp_path / "whole", settings)
    token = CancelToken()
    with pytest.raises((Cancelled, RuntimeError)):
        distill(teacher, corpus, tmp_path / "resumed", settings, progress=_StopAt(9, how, token), cancel=token)
    assert (tmp_path / "resumed" / "checkpoint.json").is_file()
    resumed = distill(teacher, corpus, tmp_path / "resumed", settings)
    assert resumed.history.equals(whole.history)
    a = load_model(tmp_path / "whole", device="cpu").model.state_dict()
    b = load_model(tmp_path / "resumed", device="cpu").model.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not (tmp_path / "resumed" / "checkpoint.json").exists()
    again = distill(teacher, corpus, tmp_path / "resumed", settings)  # finished: nothing is trained again
    assert again.history.equals(whole.history)


def test_the_result_round_trips(small_model_dir, corpus, tmp_path):
    teacher = _teacher(small_model_dir, "gpt2")
    result = distill(teacher, corpus, tmp_path / "run", DistillSettings(num_layers=1, steps=3, **SMALL))
    loaded = DistillResult.load(tmp_path / "run")
    assert loaded.history.equals(result.history)
    assert loaded.summary == result.summary and loaded.model_path.is_dir()
    assert list(loaded.history.columns) == ["step", "epoch", "loss", "ce", "lm", "cos", "lr"]


# --- the command ---------------------------------------------------------------------------------

def _cli(capsys, *args):
    from bias_lab.cli import main

    capsys.readouterr()
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_distill_command_trains_and_the_student_loads(small_model_dir, corpus, tmp_path, capsys):
    code, out, err = _cli(capsys, "distill", "--teacher", small_model_dir("bert"), "--corpus", corpus, "--layers", "0,3",
                          "--steps", "3", "--max-length", "32", "--out", tmp_path / "run")
    assert code == 0, err
    assert "student: 2 of 4 layers" in out
    code, out, err = _cli(capsys, "runs", "list", "--kind", "distill")
    assert "2-layer student (teacher init, layers 0,3): 3 steps" in out
    assert load_model(tmp_path / "run", device="cpu").num_layers == 2


def test_the_command_runs_as_a_module(small_model_dir, corpus, tmp_path):
    done = subprocess.run([sys.executable, "-m", "bias_lab", "distill", "--teacher", str(small_model_dir("gpt2")),
                           "--corpus", str(corpus), "--steps", "0", "--max-length", "32", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "student: 2 of 4 layers" in done.stdout


@pytest.mark.parametrize("flags, message", [
    (["--layers", "0,9"], "layer 9 does not exist: the teacher has layers 0–3"),
    (["--layers", "0,0"], "layer 0 is named twice"),
    (["--num-layers", "6"], "deeper than the teacher (4 layers)"),
    (["--layers", "0,1,2,3,3"], "deeper than the teacher"),
    (["--alpha-ce", "0", "--alpha-lm", "0", "--alpha-cos", "0"], "are all 0"),
    (["--temperature", "0"], "temperature 0.0 must be positive"),
    (["--temperature", "-1"], "temperature -1.0 must be positive"),
    (["--lm-loss", "clm"], "LM loss clm does not fit the teacher"),
    (["--ffn-width", "999"], "FFN width 999 must be between 1 and the teacher's 64"),
])
def test_bad_options_fail_in_one_line_and_leave_no_run(small_model_dir, corpus, tmp_path, capsys, flags, message):
    code, out, err = _cli(capsys, "distill", "--teacher", small_model_dir("bert"), "--corpus", corpus, "--steps", "2",
                          "--max-length", "32", *flags, "--out", tmp_path / "run")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    assert "distill" not in _cli(capsys, "runs", "list")[1]


def test_a_missing_corpus_is_named(small_model_dir, tmp_path, capsys):
    code, out, err = _cli(capsys, "distill", "--teacher", small_model_dir("bert"), "--corpus", tmp_path / "none.txt",
                          "--steps", "2", "--out", tmp_path / "run")
    assert code == 2 and "none.txt" in err
    assert not (tmp_path / "run").exists()
