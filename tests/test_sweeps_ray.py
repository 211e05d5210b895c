"""Sweeps on a real Ray cluster on the loopback interface: one head (``ray start --head`` on
127.0.0.1, 2 CPUs) for the whole module, stopped by process id afterwards. Through ``--address``
a neurons and a heads sweep give exactly the ``--serial`` results (and the single-machine
commands'); a worker killed mid-sweep (by its pid) is retried and the sweep completes identically;
a driver killed mid-sweep (kill -9) resumes: no unit is written twice and the store's rows equal
an uninterrupted run's. Every worker runs one torch thread, and so do the oracles here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest

from bias_lab.cli import main
from bias_lab.store import RunStore
from bias_lab.sweeps import SweepResult, load_sweep, run_sweep
from bias_lab.sweeps.cluster import RaySession, start_loopback_head

from .conftest import ROOT
from .test_sweeps_local import _listening
from .test_sweeps import (PROMPTS, TEXTS, assert_same_heads, assert_same_ig2, comparable, heads_sweep, neurons_sweep,
                          one_thread, write_prompts)

__all__ = ["one_thread"]  # a fixture used here


@pytest.fixture(scope="module")
def head():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        patch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
        started = start_loopback_head(num_cpus=2)
        try:
            for name, value in started.environment.items():  # the drivers here: loopback, the head's token
                patch.setenv(name, value)
            with RaySession(started.address):  # one connection (on loopback), which every sweep here uses
                yield started
        finally:
            started.stop()
            assert not started.own_processes(), "the head's processes outlived stop()"


@pytest.fixture
def files(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    return text, write_prompts(tmp_path / "prompts.jsonl"), write_prompts(tmp_path / "man.jsonl", PROMPTS[:5],
                                                                              ("man", "woman"))


def test_neurons_and_heads_sweeps_through_address_equal_serial_and_the_commands(capsys, head, tiny_model_dir,
                                                                                tmp_path, files, one_thread):
    model = tiny_model_dir("bert")
    text, prompts, man = files
    ig2 = neurons_sweep(tmp_path, model, [prompts, man], out="ray-ig2", limit=7)
    assert main(["sweep", str(ig2), "--address", head.address]) == 0, capsys.readouterr().err
    assert "5 of 5 units done" in capsys.readouterr().out
    serial = run_sweep(neurons_sweep(tmp_path, model, [prompts, man], out="serial-ig2", limit=7), serial=True,
                       threads_per_worker=1)
    assert serial.ok
    for job in load_sweep(ig2).jobs:
        assert_same_ig2(job.folder, tmp_path / "serial-ig2" / job.name)  # exactly
        cli = tmp_path / f"cli-{job.name}"
        assert main(["neurons", "attribute", "--model", str(model), "--data", job.params["prompts"], "--limit", "7",
                     "--steps", "3", "--out", str(cli)]) == 0
        assert_same_ig2(job.folder, cli, exact=False)  # the command attributes all 7 in one unit
    listeners = _listening(head.own_processes() | {os.getpid()})  # the head, its workers and this driver
    assert listeners and all(address.is_loopback for address in listeners), listeners
    sweep = SweepResult.load(tmp_path / "ray-ig2" / "_sweep")
    workers = sweep.plan["backend"]["workers"]
    assert len(workers) == 2 and {w["node"] for w in workers} == {"127.0.0.1"} and {w["threads"] for w in workers} == {1}
    assert all(w["reuses_freed_buffers"] for w in workers)  # tests/test_allocator.py: what that changes
    assert set(sweep.units["worker_pid"]) <= {w["pid"] for w in workers}

    heads = heads_sweep(tmp_path, model, text, prompts, out="ray-heads")
    assert main(["sweep", str(heads), "--address", head.address]) == 0, capsys.readouterr().err
    run_sweep(heads_sweep(tmp_path, model, text, prompts, out="serial-heads"), serial=True, threads_per_worker=1)
    assert main(["heads", "score", "--model", str(model), "--perf", "mlm-loss", "--perf-data", str(text), "--bias",
                 "ig2-gap", "--bias-data", str(prompts), "--limit", "3", "--out", str(tmp_path / "cli-heads")]) == 0
    (job,) = load_sweep(heads).jobs
    assert_same_heads(job.folder, tmp_path / "serial-heads" / job.name)
    assert_same_heads(job.folder, tmp_path / "cli-heads")
    store = RunStore()
    assert comparable(store.get(str(job.folder))) == comparable(store.get(str(tmp_path / "cli-heads")))


def _slow_sweep(tmp_path, model, out):
    """8 units of one prompt at 96 steps: long enough to be caught running."""
    prompts = write_prompts(tmp_path / "eight.jsonl", PROMPTS + ["[MASK] is here ."])
    return neurons_sweep(tmp_path, model, [prompts], out=out, steps=96, chunk=1)


def _progress(tmp_path, out) -> dict:
    try:
        return json.loads((tmp_path / out / "_sweep" / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def test_a_worker_killed_mid_sweep_is_retried_and_the_sweep_completes_identically(head, tiny_model_dir, tmp_path,
                                                                                 one_thread):
    model = tiny_model_dir("bert")
    killed: list[int] = []

    def kill_the_first_running_worker():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            for unit in _progress(tmp_path, "killed").get("running", {}).values():
                if unit.get("pid"):
                    os.kill(unit["pid"], signal.SIGKILL)  # the actor's process, by the pid it reported
                    killed.append(unit["pid"])
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_running_worker, daemon=True)
    killer.start()
    outcome = run_sweep(_slow_sweep(tmp_path, model, "killed"), address=head.address)
    killer.join(timeout=5)
    assert killed and outcome.ok and outcome.retried, (killed, outcome)
    run_sweep(_slow_sweep(tmp_path, model, "serial"), serial=True, threads_per_worker=1)
    (job,) = load_sweep(tmp_path / "killed.yaml").jobs
    assert_same_ig2(job.folder, tmp_path / "serial" / job.name)
    units = SweepResult.load(tmp_path / "killed" / "_sweep").units.set_index("unit")
    retried = units[units["retries"] > 0]
    assert len(retried) >= 1 and (retried["status"] == "done").all()
    errors = [error for text in retried["errors"] for error in json.loads(text)]
    assert any(f"worker {killed[0]} on " in error and "died" in error for error in errors), errors
    assert (retried["attempts"] == retried["retries"] + 1).all()


def test_a_driver_killed_mid_sweep_resumes_without_writing_a_unit_twice(capsys, head, tiny_model_dir, tmp_path,
                                                                        one_thread):
    model = tiny_model_dir("bert")
    path = _slow_sweep(tmp_path, model, "resumed")
    (job,) = load_sweep(path).jobs
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    driver = subprocess.Popen([sys.executable, "-m", "bias_lab", "sweep", str(path), "--address", head.address],
                              cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if len(list((job.folder / "parts").glob("*.parquet"))) >= 2:
                break
            time.sleep(0.02)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(timeout=60)
        driver.stderr.close()
    done_before = sorted((job.folder / "parts").glob("*.parquet"))
    assert 2 <= len(done_before) < 8, "the driver was not killed mid-sweep"
    # Each unit done before the kill: its rows in the job's run and its record in the sweep's run.
    records = [tmp_path / "resumed" / "_sweep" / "parts" / f"{quote(f'{job.name}/{p.stem}', safe='')}.parquet"
               for p in done_before]
    written = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in done_before + records}
    assert RunStore().get(str(job.folder)).status == "running"  # as kill -9 left it

    assert main(["sweep", str(path), "--address", head.address]) == 0, capsys.readouterr().err
    assert f"8 of 8 units done ({len(done_before)} before this run)" in capsys.readouterr().out
    for part, stamp in written.items():
        assert (part.stat().st_mtime_ns, part.stat().st_ino) == stamp, f"{part} was written again"

    reference = run_sweep(_slow_sweep(tmp_path, model, "uninterrupted"), serial=True, threads_per_worker=1)
    assert reference.ok
    assert_same_ig2(job.folder, tmp_path / "uninterrupted" / job.name)
    store = RunStore()
    assert comparable(store.get(str(job.folder))) == comparable(store.get(str(tmp_path / "uninterrupted" / job.name)))
    sweep = store.get(str(tmp_path / "resumed" / "_sweep"))
    assert sweep.status == "complete" and sweep.summary["done"] == 8 and sweep.summary["skipped"] == len(done_before)
