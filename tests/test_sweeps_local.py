"""`bias-lab sweep FILE` without --address or --serial starts a local Ray instance of its own that
listens on 127.0.0.1 only, gives the --serial results, and is gone when the command ends."""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

import pytest

from bias_lab.cli import main
from bias_lab.sweeps import SweepResult, load_sweep, run_sweep

from .test_sweeps import PROMPTS, assert_same_ig2, neurons_sweep, one_thread, write_prompts

__all__ = ["one_thread"]  # a fixture used here


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, grown = {root}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grown = True
    return found - {root}


def _listening(pids: set[int]) -> set:
    """The addresses that sockets of ``pids`` listen on (IPv4 and IPv6, from /proc/net)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])  # 32-bit words in the host's (little-endian) order
                packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                address = ipaddress.ip_address(packed)
                addresses.add(getattr(address, "ipv4_mapped", None) or address)
    return addresses


def test_no_flag_runs_a_local_instance_on_loopback_only(capsys, tiny_model_dir, tmp_path, monkeypatch, one_thread):
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)  # the session sets it (and resets it)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray connection of another test is open in this process")
    model = tiny_model_dir("bert")
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS[:4])
    path = neurons_sweep(tmp_path, model, [prompts], out="local", steps=2, chunk=2)
    seen: list[set[str]] = []
    from bias_lab.sweeps import driver

    original = driver.report

    def report_and_look(progress, done, total, message=""):  # while the instance runs: its listeners
        seen.append(_listening(_descendants(os.getpid())))
        return original(progress, done, total, message)

    monkeypatch.setattr(driver, "report", report_and_look)
    assert main(["sweep", str(path)]) == 0, capsys.readouterr().err
    assert "on a local Ray instance on 127.0.0.1" in capsys.readouterr().out
    listeners = set().union(*seen)
    assert listeners and all(address.is_loopback for address in listeners), listeners
    assert not ray.is_initialized() and "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ
    deadline = time.monotonic() + 30
    while _descendants(os.getpid()) and time.monotonic() < deadline:  # the instance's processes end
        time.sleep(0.2)
    assert not _descendants(os.getpid())

    workers = SweepResult.load(tmp_path / "local" / "_sweep").plan["backend"]["workers"]
    assert {worker["node"] for worker in workers} == {"127.0.0.1"}
    run_sweep(neurons_sweep(tmp_path, model, [prompts], out="serial", steps=2, chunk=2), serial=True,
              threads_per_worker=1)
    (job,) = load_sweep(path).jobs
    assert_same_ig2(job.folder, tmp_path / "serial" / job.name)
