"""Keeping freed buffers (bias_lab.allocator): measured by the operating system's page faults, not
by the settings the module asked for. Each check runs in a fresh interpreter, since the setting is
process-wide and this test process may already have it (every CLI call applies it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux)")

# A 24 MiB temporary, then a 20 MiB one, as a pass's temporaries come and go. With glibc's defaults
# the first is mapped fresh and unmapped on free, so the second faults its 5120 pages in again; kept,
# the second reuses the first one's pages.
PASSES = """
import json, resource, sys, torch
applied = None
if sys.argv[1] == "keep":
    from bias_lab.allocator import reuse_freed_buffers
    applied = reuse_freed_buffers()
def faults(mib):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(mib * 2**18).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
first = faults(24)
print(json.dumps({"applied": applied, "first": first, "second": faults(20)}))
"""


def passes(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    pages = 20 * 2**20 // 4096
    default, kept = passes("default"), passes("keep")
    assert kept["applied"] is True
    assert default["second"] > pages * 0.9, default  # the planted effect: glibc's defaults fault again
    assert kept["second"] < pages * 0.01, kept
    assert kept["first"] > pages  # the first pass still pays once


def test_applying_twice_is_harmless():
    from bias_lab.allocator import reuse_freed_buffers

    assert reuse_freed_buffers() == reuse_freed_buffers()
