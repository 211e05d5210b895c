"""The mutation check: plausible bugs planted one at a time in a scratch copy of the project, each
followed by the tests that guard that code; a mutation those tests do not catch *survives*, and a
surviving mutation means a bug of that kind would reach users unnoticed.

A mutation is an exact piece of source text and its replacement (it must occur exactly once, so a
refactor that moves the code makes the catalog fail loudly instead of testing nothing). Catalogs are
the ``catalog_*.py`` modules beside this one, each a list ``MUTATIONS``; every new algorithm adds
its own there.

    python -m tests.mutations.harness [--only NAME …] [--list] [--jobs 1]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    name: str  # short, unique
    file: str  # relative to the project root
    original: str  # exact source text, found exactly once
    mutated: str
    tests: tuple[str, ...]  # pytest node ids or files that must catch it
    why: str = ""  # the bug it stands for

    def apply(self, root: Path) -> None:
        path = root / self.file
        text = path.read_text()
        count = text.count(self.original)
        if count != 1:
            raise ValueError(f"mutation {self.name!r}: its original text occurs {count} times in {self.file}, not once")
        path.write_text(text.replace(self.original, self.mutated))


def catalog() -> list[Mutation]:
    """Every mutation of every ``catalog_*`` module, names unique."""
    package = Path(__file__).parent
    mutations: list[Mutation] = []
    for module in sorted(m.name for m in pkgutil.iter_modules([str(package)]) if m.name.startswith("catalog_")):
        mutations.extend(importlib.import_module(f"tests.mutations.{module}").MUTATIONS)
    names = [m.name for m in mutations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"mutation names must be unique: {', '.join(duplicates)}")
    return mutations


def _scratch_copy() -> Path:
    """The project's tracked and untracked (not ignored) files, copied to a temporary folder, with
    ``../shared`` linked beside the copy so data-dependent tests run instead of skipping."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    scratch = Path(tempfile.mkdtemp(prefix=".mutation-", dir=ROOT.parent)) / ROOT.name
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # the tests find real data and weights at ../shared
        (scratch.parent / "shared").symlink_to(shared, target_is_directory=True)
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return scratch


def run_one(mutation: Mutation, timeout: int = 900) -> tuple[str, float, str]:
    """('caught' | 'survived' | 'error', seconds, detail)."""
    scratch = _scratch_copy()
    started = time.perf_counter()
    try:
        mutation.apply(scratch)
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
                              cwd=scratch, capture_output=True, text=True, timeout=timeout,
                              env={**__import__("os").environ, "PYTHONPATH": str(scratch)})
        seconds = time.perf_counter() - started
        last = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode == 1:
            return "caught", seconds, last
        if done.returncode == 0:
            return "survived", seconds, last
        return "error", seconds, f"pytest exit {done.returncode}: {last or done.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return "error", time.perf_counter() - started, f"timed out after {timeout} s"
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    mutations = catalog()
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in mutations})
        if unknown:
            parser.error(f"unknown mutation {unknown[0]!r}: see --list")
        mutations = [m for m in mutations if m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name:40s} {m.file}  — {m.why}")
        return 0
    survivors, errors = [], []
    for index, mutation in enumerate(mutations, start=1):
        verdict, seconds, detail = run_one(mutation)
        print(f"[{index:2d}/{len(mutations)}] {verdict:8s} {mutation.name:40s} {seconds:6.1f} s  {detail}", flush=True)
        if verdict == "survived":
            survivors.append(mutation.name)
        elif verdict == "error":
            errors.append(mutation.name)
    print(f"\n{len(mutations) - len(survivors) - len(errors)} caught, {len(survivors)} survived, {len(errors)} errors")
    for name in survivors:
        print(f"SURVIVED: {name}")
    for name in errors:
        print(f"ERROR: {name}")
    return 1 if survivors or errors else 0


if __name__ == "__main__":
    sys.exit(main())
