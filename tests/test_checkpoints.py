"""The pickle-free training checkpoint (bias_lab.checkpoints) that mask training, distillation and
fine-tuning share: what comes back equals what went in (compared with the live objects, not through
the module), and a pair of files from two different checkpoints counts as none."""

from __future__ import annotations

import shutil

import torch

from bias_lab.checkpoints import STATE, TENSORS, load_training_checkpoint, save_training_checkpoint
from bias_lab.finetune.checkpoint import load_checkpoint, save_checkpoint


def trained(seed: int = 0, steps: int = 2):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        module(torch.randn(5, 4)).pow(2).sum().backward()
        optimizer.step()
    return module, optimizer


def test_a_training_checkpoint_comes_back_as_it_was_saved(tmp_path):
    module, optimizer = trained()
    weights = {name: value.detach().clone() for name, value in module.state_dict().items()}
    save_training_checkpoint(tmp_path, weights, optimizer.state_dict(), {"step": 2, "history": [{"loss": 1.5}]})
    tensors, optimizer_state, state = load_training_checkpoint(tmp_path, "cpu")
    assert state == {"step": 2, "history": [{"loss": 1.5}]}
    assert tensors.keys() == weights.keys() and all(torch.equal(tensors[k], weights[k]) for k in weights)
    fresh_module, _ = trained(seed=1, steps=0)
    fresh = torch.optim.AdamW(fresh_module.parameters(), lr=1e-2)
    fresh.load_state_dict(optimizer_state)
    want, got = optimizer.state_dict()["state"], fresh.state_dict()["state"]  # every parameter's moments and step
    assert got.keys() == want.keys()
    for index, live in want.items():
        assert got[index].keys() == live.keys() and all(torch.equal(got[index][k], live[k]) for k in live)

def test_a_fine_tuning_checkpoint_restores_modules_optimizers_and_the_random_state(tmp_path):
    module, optimizer = trained()
    scores, score_optimizer = trained(seed=3)
    save_checkpoint(tmp_path, step=7, modules={"model": module, "scores": scores},
                    optimizers={"model": optimizer, "scores": score_optimizer}, history=[{"step": 7}], seconds=1.25)
    following = torch.rand(3)  # what the interrupted run would have drawn next
    live = {name: value.detach().clone() for name, value in module.state_dict().items()}
    other, other_optimizer = trained(seed=9)
    other_scores, other_score_optimizer = trained(seed=10)
    torch.manual_seed(123)
    state = load_checkpoint(tmp_path, modules={"model": other, "scores": other_scores},
                            optimizers={"model": other_optimizer, "scores": other_score_optimizer})
    assert state == {"step": 7, "history": [{"step": 7}], "seconds": 1.25}
    assert torch.equal(torch.rand(3), following)
    assert all(torch.equal(other.state_dict()[k], live[k]) for k in live)
    assert other_score_optimizer.state_dict()["state"][0]["exp_avg"].equal(score_optimizer.state_dict()["state"][0]["exp_avg"])
    assert load_checkpoint(tmp_path, modules={"model": other}, optimizers={"model": other_optimizer}) is None


def test_files_of_two_different_checkpoints_count_as_none(tmp_path):
    module, optimizer = trained()
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, step in ((first, 1), (second, 2)):
        save_training_checkpoint(folder, dict(module.state_dict()), optimizer.state_dict(), {"step": step})
    assert load_training_checkpoint(first, "cpu")[2] == {"step": 1}
    shutil.copy(second / TENSORS, first / TENSORS)  # a crash after the tensors of step 2, before its JSON
    assert load_training_checkpoint(first, "cpu") is None
    (second / STATE).unlink()
    assert load_training_checkpoint(second, "cpu") is None
    assert load_training_checkpoint(tmp_path / "nowhere", "cpu") is None
