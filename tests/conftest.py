from pathlib import Path

import pytest

from bias_lab.families import causal_families, family_named, family_names, masked_families
from bias_lab.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MINILM = SHARED / "models" / "all-MiniLM-L6-v2"
BERT_VOCAB = MINILM / "vocab.txt"

# Every family-parametrized test runs on every family of the table (a new family joins them all).
MASKED_FAMILIES = tuple(masked_families())
CAUSAL_FAMILIES = tuple(causal_families())
ALL_FAMILIES = tuple(family_names())


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared not available)")
    return path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own run store and never reaches the Hub."""
    home = tmp_path / "bias_lab_home"
    monkeypatch.setenv("BIAS_LAB_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("BIAS_LAB_MODEL", raising=False)
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(family, kind=None, **sizes)`` → folder of a saved tiny random model (built once)."""
    built: dict[tuple, Path] = {}

    def build(family: str, kind: str | None = None, **sizes) -> Path:
        key = (family, kind, tuple(sorted(sizes.items())))
        if key not in built:
            folder = tmp_path_factory.mktemp(f"tiny-{family}-{kind or 'lm'}")
            wordpiece = family_named(family).tiny.tokenizer == "wordpiece"
            vocab = BERT_VOCAB if wordpiece and BERT_VOCAB.is_file() else None
            built[key] = build_tiny_model(family, folder, kind=kind, vocab_file=vocab, **sizes)
        return built[key]

    return build


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    """``tiny_loaded(family, kind=None)`` → a LoadedModel on CPU (cached per session; do not mutate)."""
    from bias_lab.models import load_model

    cache: dict[tuple, object] = {}

    def load(family: str, kind: str | None = None):
        if (family, kind) not in cache:
            cache[(family, kind)] = load_model(tiny_model_dir(family, kind), device="cpu")
        return cache[(family, kind)]

    return load
