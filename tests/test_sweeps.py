"""Sweeps without Ray (``--serial``, the oracle of the Ray tests): each kind's job folders hold what
the single-machine command writes (compared with that command's own output), bad sweep files are
refused before anything starts, a unit with bad input fails alone, a worker's death is retried and
recorded, an interrupted sweep resumes without writing a finished unit again, and a sweep's status
counts its units."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from bias_lab.cli import main
from bias_lab.errors import Cancelled
from bias_lab.evaluation.record import EvaluationResult
from bias_lab.heads.runs import HeadScoresResult
from bias_lab.neurons.run import IG2Result
from bias_lab.progress import CancelToken
from bias_lab.store import RunStore
from bias_lab.sweeps import SweepResult, load_sweep, run_sweep, sweep_status

TIMING_KEYS = {"attribution_s", "prompts_per_s", "scoring_s"}
PROMPTS = ["[MASK] is a doctor .", "the nurse said [MASK] was late .", "[MASK] works in the city .",
           "this young person said [MASK] is kind .", "the old farmer thinks [MASK] is rich .",
           "[MASK] drives a car to the school .", "a teacher said that [MASK] is honest ."]
TEXTS = ["the doctor is here and she is very kind .", "this young person is honest .",
         "a man and a woman work in the city .", "the old farmer drives a car ."]


# --- helpers the Ray tests share ----------------------------------------------------------------

@pytest.fixture
def one_thread():
    """Torch on one thread, as each sweep worker is: float sums then add up in the same order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_prompts(path: Path, texts=PROMPTS, pair=("he", "she")) -> Path:
    path.write_text("\n".join(json.dumps({"id": f"p{i}", "prompt": t, "pair": list(pair)})
                              for i, t in enumerate(texts)) + "\n")
    return path


def write_sweep(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def comparable(record) -> dict:
    """A store row without what differs between two runs of the same work (id, times, folder,
    provenance, measured seconds)."""
    return {"kind": record.kind, "model": record.model, "status": record.status, "config": record.config,
            "summary": {k: v for k, v in record.summary.items() if k not in TIMING_KEYS}, "error": record.error}


def assert_same_ig2(folder, oracle, *, exact=True) -> None:
    got, want = IG2Result.load(folder), IG2Result.load(oracle)
    if exact:
        assert torch.equal(got.scores, want.scores)
        pd.testing.assert_frame_equal(got.prompts, want.prompts)
    else:  # another batch composition: equal up to float32 rounding
        torch.testing.assert_close(got.scores, want.scores, rtol=1e-4, atol=1e-12)
        pd.testing.assert_frame_equal(got.prompts, want.prompts, rtol=1e-5)
    for key in ("settings", "skipped"):
        assert got.config[key] == want.config[key]
    assert {k: v for k, v in got.config["summary"].items() if k not in TIMING_KEYS} == pytest.approx(
        {k: v for k, v in want.config["summary"].items() if k not in TIMING_KEYS}, rel=1e-5)


def assert_same_heads(folder, oracle) -> None:
    got, want = HeadScoresResult.load(folder), HeadScoresResult.load(oracle)
    pd.testing.assert_frame_equal(got.table, want.table)
    assert got.baseline == want.baseline and got.meta["model"] == want.meta["model"]
    assert got.config == want.config


def neurons_sweep(tmp_path, model, prompt_files, *, out="sweep", steps=3, limit=None, chunk=3) -> Path:
    settings = {"steps": steps, **({"limit": limit} if limit else {})}
    return write_sweep(tmp_path / f"{out}.yaml", {"kind": "neurons", "out": str(tmp_path / out),
                                                   "grid": {"model": [str(model)], "prompts": [str(p) for p in prompt_files]},
                                                   "settings": settings, "chunk": chunk})


def heads_sweep(tmp_path, model, text, prompts, *, out="heads") -> Path:
    return write_sweep(tmp_path / f"{out}.yaml", {
        "kind": "heads", "out": str(tmp_path / out), "grid": {"model": [str(model)]},
        "settings": {"perf": "mlm-loss", "perf_data": str(text), "bias": "ig2-gap", "bias_data": str(prompts),
                     "limit": 3}})


@pytest.fixture
def data(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    return text, write_prompts(tmp_path / "prompts.jsonl"), write_prompts(tmp_path / "man.jsonl", PROMPTS[:5],
                                                                              ("man", "woman"))


# --- bad sweep files ---------------------------------------------------------------------------

BAD_FILES = [
    ({"out": "o", "grid": {"model": ["M"]}}, "kind: missing field"),
    ({"kind": "nope", "out": "o", "grid": {"model": ["M"]}}, "kind: unknown kind 'nope'; valid kinds are neurons"),
    ({"kind": "neurons", "grid": {"model": ["M"]}}, "out: missing field"),
    ({"kind": "neurons", "out": "o", "grid": {}}, "grid: is empty"),
    ({"kind": "neurons", "out": "o", "grid": {"model": []}}, "grid.model: is empty"),
    ({"kind": "neurons", "out": "o", "grid": {"prompts": ["P"]}}, "model: needs a value"),
    ({"kind": "neurons", "out": "o", "grid": {"model": ["M"], "prompts": ["P"]}, "settings": {"stepz": 3}},
     "settings.stepz: unknown setting of the neurons sweep kind"),
    ({"kind": "neurons", "out": "o", "grid": {"model": ["M"], "prompts": ["P"]}, "settings": {"steps": "many"}},
     "settings.steps: must be a whole number"),
    ({"kind": "neurons", "out": "o", "grid": {"model": ["/nowhere/model"], "prompts": ["P"]}},
     "grid.model: unknown model '/nowhere/model'"),
    ({"kind": "neurons", "out": "o", "grid": {"model": ["no-such-org-xyz/no-such-model"], "prompts": ["P"]}},
     "grid.model: unknown model 'no-such-org-xyz/no-such-model'"),
    ({"kind": "neurons", "out": "o", "grid": {"model": ["M"], "prompts": ["missing.jsonl"]}},
     "grid.prompts: file 'missing.jsonl' does not exist"),
    ({"kind": "heads", "out": "o", "grid": {"model": ["M"]}, "chunk": 5}, "chunk: applies to neurons sweeps only"),
    ({"kind": "evaluate", "out": "o", "grid": {"model": ["M"]}}, "benchmark: needs a value"),
    ({"kind": "neurons", "out": "o", "grid": {"model": ["M"], "jut": [{"dimension": "gender", "modifier": "N",
                                                                          "pair": ["female", "martian"]}]}},
     "grid.jut[0].dimension: unknown gender demographic 'martian'"),
]


@pytest.mark.parametrize("sweep, message", BAD_FILES)
def test_a_bad_sweep_file_is_refused_in_one_line_naming_the_field(capsys, tmp_path, tiny_model_dir, data, monkeypatch,
                                                                   sweep, message):
    monkeypatch.chdir(tmp_path)
    model = str(tiny_model_dir("bert"))
    text = json.dumps(sweep).replace('"M"', json.dumps(model)).replace('"P"', json.dumps(str(data[1])))
    path = write_sweep(tmp_path / "bad.yaml", json.loads(text))
    assert main(["sweep", str(path)]) == 2  # no --serial: nothing, Ray included, may start before the check
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: ") and message in err, err
    assert not (tmp_path / "o").exists() and RunStore().list() == []
    import ray

    assert not ray.is_initialized()


def test_a_sweep_file_that_is_not_a_mapping_or_not_yaml_is_refused(capsys, tmp_path):
    for text in ("- just\n- a list\n", "kind: [unclosed\n"):
        path = tmp_path / "x.yaml"
        path.write_text(text)
        assert main(["sweep", str(path)]) == 2
        assert "error:" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "absent.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_paper_jut_shortcut_gives_114_jobs(tiny_model_dir, tmp_path):
    spec = load_sweep(write_sweep(tmp_path / "s.yaml", {"kind": "neurons", "out": str(tmp_path / "o"),
                                                          "grid": {"model": [str(tiny_model_dir("bert"))], "jut": "all"}}))
    assert len(spec.jobs) == 114 and len({job.name for job in spec.jobs}) == 114
    assert spec.jobs[0].params["dimension"] == "gender" and spec.jobs[0].params["pair"] == ["female", "male"]


# --- each kind against its single-machine command ----------------------------------------------

def test_neurons_sweep_writes_ordinary_ig2_runs(capsys, tiny_model_dir, tmp_path, data, one_thread):
    """Jobs split into chunks of 3 prompts; every job folder equals run_ig2 with the same unit size
    (the whole run: artifacts, config, store row) and `neurons attribute` on the same prompts."""
    from bias_lab.models import load_model
    from bias_lab.neurons import IG2Settings, run_ig2
    from bias_lab.neurons.prompts import load_prompt_file

    model = tiny_model_dir("bert")
    _, prompts, man = data
    path = neurons_sweep(tmp_path, model, [prompts, man], limit=7)
    assert main(["sweep", str(path), "--serial"]) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "5 of 5 units done" in captured.out  # 7 prompts → 3 chunks, 5 prompts → 2
    assert "5/5" in captured.err and "unit/s" in captured.err  # the bar, also where stderr is a log file
    loaded = load_model(model, device="cpu")
    store = RunStore()
    for name, file, count in (("prompts", prompts, 7), ("man", man, 5)):
        oracle = tmp_path / f"oracle-{name}"
        run_ig2(loaded, load_prompt_file(file)[:7], oracle, IG2Settings(steps=3), unit_size=3,
                description={"prompts_file": str(file), "limit": 7})
        folder = tmp_path / "sweep" / name
        assert_same_ig2(folder, oracle)
        assert comparable(store.get(str(folder))) == comparable(store.get(str(oracle)))
        assert len(list((folder / "parts").glob("*.parquet"))) == -(-count // 3)
        cli = tmp_path / f"cli-{name}"
        assert main(["neurons", "attribute", "--model", str(model), "--data", str(file), "--limit", "7",
                     "--steps", "3", "--out", str(cli)]) == 0
        assert_same_ig2(folder, cli, exact=False)  # one unit of all prompts there: other batches
    sweep = SweepResult.load(tmp_path / "sweep" / "_sweep")
    assert sweep.units["status"].tolist() == ["done"] * 5 and sweep.units["attempts"].tolist() == [1] * 5
    assert store.get(str(tmp_path / "sweep" / "_sweep")).kind == "sweep"


def test_a_jut_sweep_job_is_the_run_of_neurons_attribute(capsys, tiny_model_dir, tmp_path, one_thread):
    model = tiny_model_dir("bert")
    path = write_sweep(tmp_path / "jut.yaml", {
        "kind": "neurons", "out": str(tmp_path / "juts"), "settings": {"steps": 3, "limit": 6},
        "grid": {"model": [str(model)], "jut": [{"dimension": "gender", "modifier": "N", "pair": ["female", "male"]}]}})
    assert main(["sweep", str(path), "--serial"]) == 0
    assert main(["neurons", "attribute", "--model", str(model), "--dimension", "gender", "--modifier", "N", "--pair",
                 "female", "male", "--limit", "6", "--steps", "3", "--out", str(tmp_path / "cli")]) == 0
    (job,) = load_sweep(path).jobs
    assert_same_ig2(job.folder, tmp_path / "cli")  # default chunk = the command's unit size: the same batches
    store = RunStore()
    assert comparable(store.get(str(job.folder))) == comparable(store.get(str(tmp_path / "cli")))


def test_heads_sweep_writes_ordinary_heads_runs(capsys, tiny_model_dir, tmp_path, data, one_thread):
    model = tiny_model_dir("bert")
    text, prompts, _ = data
    assert main(["sweep", str(heads_sweep(tmp_path, model, text, prompts)), "--serial"]) == 0, capsys.readouterr().err
    assert main(["heads", "score", "--model", str(model), "--perf", "mlm-loss", "--perf-data", str(text), "--bias",
                 "ig2-gap", "--bias-data", str(prompts), "--limit", "3", "--out", str(tmp_path / "cli")]) == 0
    (job,) = load_sweep(tmp_path / "heads.yaml").jobs
    assert sorted(p.stem for p in (job.folder / "parts").glob("*.parquet")) == ["layer000", "layer001"]
    assert_same_heads(job.folder, tmp_path / "cli")
    store = RunStore()
    assert comparable(store.get(str(job.folder))) == comparable(store.get(str(tmp_path / "cli")))


def test_evaluate_sweep_and_a_unit_with_bad_input_failing_alone(capsys, tiny_model_dir, tmp_path, data, one_thread):
    """models × interventions × benchmarks; the intervention naming layer 9 of a 2-layer model fails
    that unit alone: the others are stored as `bias-lab evaluate` stores them, the exit code is 1."""
    model = tiny_model_dir("bert")
    text, prompts, _ = data
    good, bad = tmp_path / "heads.json", tmp_path / "layer9.json"
    good.write_text(json.dumps({"heads": [{"layer": 1, "head": 0}]}))
    bad.write_text(json.dumps({"heads": [{"layer": 9, "head": 0}]}))
    path = write_sweep(tmp_path / "ev.yaml", {
        "kind": "evaluate", "out": str(tmp_path / "ev"),
        "grid": {"model": [str(model)], "intervention": ["none", str(good), str(bad)],
                 "benchmark": [{"benchmark": "ig2-gap", "data": str(prompts)},
                               {"benchmark": "mlm-loss", "data": str(text)}]},
        "settings": {"limit": 3}})
    code = main(["sweep", str(path), "--serial"])
    captured = capsys.readouterr()
    assert code == 1
    assert "4 of 6 units done, 2 failed" in captured.out
    failures = [line for line in captured.out.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 2 and all("layer9" in line and "layer 9" in line for line in failures)
    spec, store = load_sweep(path), RunStore()
    for job in spec.jobs:
        if job.params["intervention"] == str(bad):
            assert not job.folder.exists()  # as the CLI: a failed evaluation stores nothing
            continue
        cli = tmp_path / f"cli-{job.name}"
        argv = ["evaluate", job.params["benchmark"], "--model", str(model), "--data", job.params["data"],
                "--limit", "3", "--out", str(cli)]
        assert main(argv + (["--intervention", str(good)] if job.params["intervention"] else [])) == 0
        got, want = EvaluationResult.load(job.folder), EvaluationResult.load(cli)
        assert got.summary == want.summary and got.config == want.config
        pd.testing.assert_frame_equal(got.items, want.items)
        assert comparable(store.get(str(job.folder))) == comparable(store.get(str(cli)))
    status = sweep_status(tmp_path / "ev")
    assert status.counts == {"done": 4, "running": 0, "failed": 2, "pending": 0, "total": 6, "retries": 0}
    assert store.get(str(tmp_path / "ev" / "_sweep")).status == "failed"


def test_fasp_sweep_equals_heads_select_and_tradeoff(capsys, tiny_model_dir, tmp_path, data, one_thread):
    from bias_lab.sweeps.kind_fasp import spec_name, tradeoff_table

    model = tiny_model_dir("bert")
    text, prompts, _ = data
    scored = tmp_path / "scored"
    assert main(["heads", "score", "--model", str(model), "--perf", "mlm-loss", "--perf-data", str(text), "--bias",
                 "ig2-gap", "--bias-data", str(prompts), "--limit", "3", "--out", str(scored)]) == 0
    metrics = {"perf": "mlm-loss", "perf_data": str(text), "bias": "ig2-gap", "bias_data": str(prompts), "limit": 3}
    path = write_sweep(tmp_path / "fasp.yaml", {"kind": "fasp", "out": str(tmp_path / "fasp"),
                                                 "grid": {"run": [str(scored)]},
                                                 "settings": {**metrics, "alphas": [0.0, 0.25, 0.5],
                                                              "gammas": [0.25, 0.5]}})
    assert main(["sweep", str(path), "--serial"]) == 0, capsys.readouterr().err
    (job,) = load_sweep(path).jobs
    table = tradeoff_table(job.folder)
    assert main(["heads", "tradeoff", "--run", str(scored), "--model", str(model), "--perf", "mlm-loss", "--perf-data",
                 str(text), "--bias", "ig2-gap", "--bias-data", str(prompts), "--limit", "3", "--alphas", "0", "0.25",
                 "0.5", "--gammas", "0.25", "0.5", "--out", str(tmp_path / "tradeoff.csv")]) == 0
    want = pd.read_csv(tmp_path / "tradeoff.csv")
    pd.testing.assert_frame_equal(table.assign(pruned=table["pruned"].map(json.dumps)), want, check_dtype=False)
    distinct = want["pruned"].nunique()
    assert len(SweepResult.load(tmp_path / "fasp" / "_sweep").units) == distinct < len(want)  # each set once
    for alpha, gamma in zip(want["alpha"], want["gamma"]):
        spec = tmp_path / "select.json"
        assert main(["heads", "select", "--run", str(scored), "--rule", "fasp", "--alpha", str(alpha), "--gamma",
                     str(gamma), "--out", str(spec)]) == 0
        assert (job.folder / "specs" / spec_name(alpha, gamma)).read_text() == spec.read_text()


# --- faults ------------------------------------------------------------------------------------

def test_a_worker_death_is_retried_and_recorded(capsys, tiny_model_dir, tmp_path, data, monkeypatch, one_thread):
    """A backend reporting the first unit's worker dead once: the unit runs again, the sweep
    completes with the same results, and the record says 2 attempts, 1 retry, and why."""
    from bias_lab.sweeps import backends

    reference = neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], out="reference")
    run_sweep(reference, serial=True)
    original, died = backends.SerialBackend.wait, []

    def wait_dying_once(self, timeout=None):
        if not died and self._pending is not None:
            died.append(self._pending.key)
            unit, self._pending = self._pending, None
            return [backends.Outcome(unit, died="worker 123 on test died (killed)")]
        return original(self, timeout)

    monkeypatch.setattr(backends.SerialBackend, "wait", wait_dying_once)
    dying = neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], out="dying")
    outcome = run_sweep(dying, serial=True, retries=1)
    assert outcome.ok and outcome.retried == {died[0]: 1}
    (job,) = load_sweep(dying).jobs
    assert_same_ig2(job.folder, tmp_path / "reference" / job.name)
    units = SweepResult.load(tmp_path / "dying" / "_sweep").units.set_index("unit")
    assert units.loc[died[0], "attempts"] == 2 and units.loc[died[0], "retries"] == 1
    assert json.loads(units.loc[died[0], "errors"]) == ["worker 123 on test died (killed)"]

    died.clear()  # with no retries left, the unit fails alone and the others complete
    monkeypatch.setattr(backends.SerialBackend, "wait", wait_dying_once)
    outcome = run_sweep(neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], out="given-up"), serial=True,
                        retries=0)
    assert outcome.failed == [(died[0], "worker 123 on test died (killed); gave up after 1 attempts")]
    assert outcome.counts["done"] == 2 and outcome.counts["failed"] == 1


def test_a_freed_worker_gets_its_next_unit_before_the_driver_writes(tiny_model_dir, tmp_path, data, monkeypatch,
                                                                     one_thread):
    """The driver hands the next unit out before it stores the one that came back, so a worker
    computes while the driver writes (otherwise every write is idle time of the workers)."""
    from bias_lab.sweeps import backends
    from bias_lab.sweeps.kind_neurons import NeuronsKind

    events = []
    submit, record = backends.SerialBackend.submit, NeuronsKind.record

    def logged_submit(self, unit):
        events.append(("submit", unit.name))
        return submit(self, unit)

    def logged_record(self, plan, unit, output, context):
        events.append(("record", unit.name))
        return record(self, plan, unit, output, context)

    monkeypatch.setattr(backends.SerialBackend, "submit", logged_submit)
    monkeypatch.setattr(NeuronsKind, "record", logged_record)
    assert run_sweep(neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], chunk=2), serial=True).ok
    names = [name for event, name in events if event == "submit"]
    assert len(names) == 4 and [name for event, name in events if event == "record"] == names
    for finished, following in zip(names, names[1:]):
        assert events.index(("submit", following)) < events.index(("record", finished))


def test_an_interrupted_sweep_resumes_without_writing_a_finished_unit_again(tiny_model_dir, tmp_path, data,
                                                                            one_thread):
    model = tiny_model_dir("bert")
    reference = run_sweep(neurons_sweep(tmp_path, model, [data[1], data[2]], out="reference"), serial=True)
    assert reference.ok
    path = neurons_sweep(tmp_path, model, [data[1], data[2]], out="sweep")
    cancel = CancelToken()

    def stop_after_two(done, total, message=""):
        if done >= 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        run_sweep(path, serial=True, progress=stop_after_two, cancel=cancel)
    store = RunStore()
    assert store.get(str(tmp_path / "sweep" / "_sweep")).status == "interrupted"
    parts = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (tmp_path / "sweep").glob("*/parts/*")}
    assert len([p for p in parts if p.suffix == ".parquet" and "_sweep" not in p.parts]) == 2
    outcome = run_sweep(path, serial=True)
    assert outcome.ok and outcome.counts["skipped"] == 2 and outcome.counts["done"] == 5
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in parts} == parts  # none written twice
    for job in ("prompts", "man"):
        assert_same_ig2(tmp_path / "sweep" / job, tmp_path / "reference" / job)
        assert comparable(store.get(str(tmp_path / "sweep" / job))) == \
            comparable(store.get(str(tmp_path / "reference" / job)))
    again = run_sweep(path, serial=True)  # a finished sweep: nothing to do, nothing rewritten
    assert again.counts["skipped"] == 5 and again.ok


def test_another_sweep_file_into_the_same_out_folder_is_refused(capsys, tiny_model_dir, tmp_path, data):
    path = neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], steps=2, limit=3)
    assert main(["sweep", str(path), "--serial"]) == 0
    neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], steps=4, limit=3)
    capsys.readouterr()
    assert main(["sweep", str(path), "--serial"]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: out: {tmp_path / 'sweep'} holds a sweep whose job 'tiny-bert-lm0__prompts' has steps 2, " \
           "not 4: use another out folder" in err and err.count("\n") == 1


# --- status ------------------------------------------------------------------------------------

def test_status_counts_units_by_hand(tmp_path):
    """A sweep folder written by hand: 2 finished records (done, failed), 1 unit the driver says is
    running, 1 with nothing yet; once the sweep is no longer running, a running unit is pending."""
    from bias_lab.store import write_json_atomic
    from bias_lab.sweeps.record import RECORD_COLUMNS

    store = RunStore()
    run = store.start("sweep", {"jobs": {}}, artifact_dir=tmp_path / "out" / "_sweep")
    write_json_atomic(run.path("sweep.json"), {"jobs": [{"name": "a", "units": ["u1", "u2"]},
                                                         {"name": "b", "units": ["u1", "u2"]}]})
    for key, status in (("a/u1", "done"), ("b/u2", "failed")):
        row = dict.fromkeys(RECORD_COLUMNS)
        row.update(unit=key, job=key[0], name=key[2:], status=status, attempts=2, retries=1, extra="{}", errors="[]",
                   error="boom" if status == "failed" else None)
        run.save_unit(key, pd.DataFrame([row], columns=RECORD_COLUMNS))
    write_json_atomic(run.path("progress.json"), {"running": {"a/u2": {"attempt": 1, "pid": 42, "host": "h"}}})
    status = sweep_status(tmp_path / "out")
    assert status.counts == {"done": 1, "running": 1, "failed": 1, "pending": 1, "total": 4, "retries": 2}
    assert status.units.set_index("unit").loc["a/u2", "worker_pid"] == 42
    assert status.refresh_s == 2.0 and "1 of 4 units done, 1 running, 1 failed, 1 pending" in status.line()
    assert status.failed()["error"].tolist() == ["boom"]
    run.interrupt()
    status = sweep_status(run.id)
    assert status.counts["running"] == 0 and status.counts["pending"] == 2 and status.refresh_s is None


def test_sweep_status_command(capsys, tiny_model_dir, tmp_path, data):
    path = neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], steps=2, limit=3)
    assert main(["sweep", str(path), "--serial"]) == 0
    capsys.readouterr()
    assert main(["sweep", "status", str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 units done, 0 running, 0 failed, 0 pending — sweep complete" in out
    assert main(["sweep", "status", str(tmp_path / "sweep"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (job,) = load_sweep(path).jobs
    assert job.name == "tiny-bert-lm0__prompts"  # a grid of single values: named by all of them
    assert document["counts"]["done"] == 1 and document["units"][0]["unit"] == f"{job.name}/0000000"
    assert main(["sweep", "status", str(tmp_path / "nothing")]) == 2
    assert "no sweep" in capsys.readouterr().err


def test_distill_sweep_variants_are_the_runs_of_bias_lab_distill(capsys, tiny_model_dir, tmp_path, one_thread):
    """Each variant's folder is the run `bias-lab distill` makes with the same options (its loss
    history, student and config), entered into the store by the driver."""
    from bias_lab.assets import asset_path
    from bias_lab.compression.distill import DistillResult

    model, corpus = tiny_model_dir("bert"), asset_path("prompts", "classroom_corpus.txt")
    path = write_sweep(tmp_path / "distill.yaml", {
        "kind": "distill", "out": str(tmp_path / "students"), "grid": {"model": [str(model)], "variant": [
            {"name": "one-copied", "num_layers": 1}, {"name": "one-random", "num_layers": 1, "init": "random"}]},
        "settings": {"corpus": "asset:prompts/classroom_corpus.txt", "steps": 2, "batch_size": 4, "max_length": 16}})
    assert main(["sweep", str(path), "--serial"]) == 0, capsys.readouterr().err
    store = RunStore()
    for job, init in zip(load_sweep(path).jobs, ("teacher", "random")):
        cli = tmp_path / f"cli-{init}"
        assert main(["distill", "--teacher", str(model), "--num-layers", "1", "--init", init, "--corpus", str(corpus),
                     "--steps", "2", "--batch-size", "4", "--max-length", "16", "--out", str(cli)]) == 0
        got, want = DistillResult.load(job.folder), DistillResult.load(cli)
        pd.testing.assert_frame_equal(got.history, want.history)
        assert got.meta["config"] == want.meta["config"]
        mine, theirs = store.get(str(job.folder)), store.get(str(cli))
        assert mine.id == got.meta["id"] and mine.status == "complete" and mine.config == theirs.config
        speeds = {"teacher_tokens_per_s", "student_tokens_per_s", "speedup", "training_s"}
        assert {k: v for k, v in mine.summary.items() if k not in speeds} == \
            {k: v for k, v in theirs.summary.items() if k not in speeds}
        mine, theirs = (load_file(str(folder / "model" / "model.safetensors")) for folder in (job.folder, cli))
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_every_example_sweep_file_is_a_valid_sweep(tmp_path, monkeypatch):
    """The examples of assets/sweeps parse into the jobs their README promises (models unchecked:
    they are hub ids); the FASP example needs the heads example's run and says so."""
    from bias_lab.assets import list_assets
    from bias_lab.sweeps import SweepFileError, parse_sweep
    from bias_lab.sweeps.spec import read_sweep_file

    monkeypatch.chdir(tmp_path)
    jobs = {"neurons": 4, "neurons-paper": 114, "heads": 2, "evaluate": 8, "distill": 6}
    files = {path.stem: path for path in list_assets("sweeps", pattern="*.yaml")}
    assert set(files) == set(jobs) | {"fasp"}
    kinds = set()
    for name, path in files.items():
        data = read_sweep_file(path)
        kinds.add(data["kind"])
        if name == "fasp":
            with pytest.raises(SweepFileError, match="grid.run: .*heads-classroom/gender"):
                parse_sweep(data, source=str(path), check_models=False)
            continue
        spec = parse_sweep(data, source=str(path), check_models=False)
        assert len(spec.jobs) == jobs[name], name
    assert kinds == {"neurons", "heads", "evaluate", "fasp", "distill"}
    heads = parse_sweep(read_sweep_file(files["heads"]), check_models=False)
    assert [job.name for job in heads.jobs] == ["gender", "religion"]  # the folders fasp.yaml names


def test_conflicting_flags_are_refused_before_anything_starts(capsys, tiny_model_dir, tmp_path, data):
    path = neurons_sweep(tmp_path, tiny_model_dir("bert"), [data[1]], steps=2, limit=3)
    for argv, message in ((["--serial", "--address", "auto"], "--serial runs in this process"),
                          (["--json"], "--json applies to `bias-lab sweep status RUN`"),
                          (["extra"], "unexpected 'extra'")):
        assert main(["sweep", str(path), *argv]) == 2
        assert message in capsys.readouterr().err
    assert main(["sweep", "status"]) == 2 and "needs the sweep" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()
