"""The mutation catalog stays in step with the code: each mutation's original text occurs exactly
once in its file and each of its tests exists (the check itself runs with
``python -m tests.mutations.harness``; see README's developer section)."""

import pytest

from tests.mutations.harness import ROOT, catalog

MUTATIONS = catalog()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutation_still_applies(mutation):
    text = (ROOT / mutation.file).read_text()
    assert text.count(mutation.original) == 1, f"{mutation.name}: original text not found exactly once in {mutation.file}"
    assert mutation.original != mutation.mutated
    for test in mutation.tests:
        path, _, name = test.partition("::")
        assert (ROOT / path).is_file(), f"{mutation.name}: no test file {path}"
        if name:
            assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), f"{mutation.name}: no test {test}"


def test_catalog_covers_the_critical_paths():
    assert len(MUTATIONS) >= 27
