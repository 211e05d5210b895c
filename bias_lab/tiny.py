"""Tiny randomly initialised models of every family, built offline.

Tests, benchmarks and demos use them instead of downloading checkpoints. Each is saved with
``save_pretrained`` so loading it goes through exactly the code path of a real checkpoint. What
to build (config class and arguments, model classes, tokenizer kind) is each family's tiny recipe
in :mod:`bias_lab.families`. WordPiece tokenizers use a real vocabulary when ``vocab_file`` is
given, otherwise a small one built from the word list below; byte-level BPE tokenizers are trained
here with ``tokenizers`` on sentences made from the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .families import FAMILIES, Family, TinySizes
from .models import quiet_transformers

# Words that tests and demos need as single tokens, plus enough everyday words for sentences.
WORDS = """
the a an this that these those is are was were be been of in on at to for with by as and or but not
he she him her his hers they them their man woman men women boy girl father mother son daughter
male female gay straight young old poor rich black white hispanic american african caucasian asian
european indian british islam christianity muslim catholic christian jewish fat slim ugly beautiful
short tall democrat conservative liberal communism driver doctor waiter lawyer farmer professor nurse
engineer teacher secretary gender sexuality age status ethnicity religion appearance politics
occupation person people identified identifies identify themselves associate belongs group
lonely lazy stupid kind smart honest rude friendly dangerous gentle worse better worst best good bad
happy sad angry calm strong weak works lives likes hates cooks drives writes reads house city car
book food money job work family friend home school day night time year world life hand part place
very really always never often here there who what which where when because so than then
""".split()

_SPECIAL_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CHARACTERS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")


def tiny_corpus(repeats: int = 3) -> list[str]:
    """Deterministic sentences that put every word of ``WORDS`` in several contexts."""
    templates = ("the {} is here .", "this {} person is {} .", "a {} and a {} .", "{} people are {} .")
    sentences = []
    for _ in range(repeats):
        for i, word in enumerate(WORDS):
            other = WORDS[(i * 7 + 3) % len(WORDS)]
            for template in templates:
                sentences.append(template.format(word, other) if template.count("{}") == 2 else template.format(word))
    return sentences


def _wordpiece_vocab() -> list[str]:
    words = list(dict.fromkeys(WORDS))
    return _SPECIAL_BERT + words + _CHARACTERS + [f"##{c}" for c in _CHARACTERS]


def _bert_tokenizer(vocab_file: str | Path | None):
    from transformers import BertTokenizer

    if vocab_file is not None:
        lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    else:
        lines = _wordpiece_vocab()
    vocab = {token: index for index, token in enumerate(lines)}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=128)


def _byte_level_bpe(special_tokens: list[str], vocab_size: int = 1200):
    import json
    import tempfile

    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(tiny_corpus(), vocab_size=vocab_size, min_frequency=1, special_tokens=special_tokens,
                                show_progress=False)
    with tempfile.TemporaryDirectory() as folder:
        trainer.save_model(folder)
        vocab = json.loads(Path(folder, "vocab.json").read_text(encoding="utf-8"))
        lines = Path(folder, "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#")]
    return vocab, merges


def tiny_families() -> list[str]:
    """The families with a tiny recipe in the family table, in table order."""
    return [family.name for family in FAMILIES if family.tiny is not None]


def _tiny_family(family: str) -> Family:
    for entry in FAMILIES:
        if entry.name == family and entry.tiny is not None:
            return entry
    raise ValueError(f"unknown tiny family {family!r}: use one of {', '.join(tiny_families())}")


def tiny_tokenizer(family: str, vocab_file: str | Path | None = None):
    from transformers import GPT2Tokenizer, RobertaTokenizer

    kind = _tiny_family(family).tiny.tokenizer
    if kind == "wordpiece":
        return _bert_tokenizer(vocab_file)
    if kind == "roberta-bpe":
        from tokenizers import AddedToken

        vocab, merges = _byte_level_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        # As in roberta-base: the mask absorbs the space before it, so it predicts "Ġword" tokens.
        mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
        return RobertaTokenizer(vocab=vocab, merges=merges, mask_token=mask, model_max_length=128)
    vocab, merges = _byte_level_bpe(["<|endoftext|>"])
    return GPT2Tokenizer(vocab=vocab, merges=merges, model_max_length=128)


def _config_and_class(family: str, kind: str, tokenizer, layers: int, hidden: int, heads: int, ffn: int):
    import transformers as tf

    recipe = _tiny_family(family).tiny
    if kind not in recipe.model_classes:
        raise ValueError(f"a tiny {family} model comes as {', '.join(recipe.model_classes)}, not {kind!r}")
    config = getattr(tf, recipe.config_class)(**recipe.config(TinySizes(layers, hidden, heads, ffn), tokenizer))
    return config, getattr(tf, recipe.model_classes[kind])


def build_tiny_model(family: str, folder: str | Path, *, kind: str | None = None, layers: int = 2,
                     hidden: int = 32, heads: int = 4, ffn: int = 64, seed: int = 0,
                     vocab_file: str | Path | None = None, labels: Sequence[str] | None = None,
                     problem_type: str | None = None) -> Path:
    """Build a tiny random model of ``family`` and save it (with its tokenizer) to ``folder``.

    ``kind`` is ``masked`` (default for encoders), ``causal`` (default for decoders), ``encoder``, or
    another kind the family's recipe lists (for BERT ``pretraining``: masked-LM and next-sentence
    heads, like bert-base-uncased; ``classifier``). For a classifier, ``labels`` names its classes
    in order (its ``id2label``; default: transformers' two ``LABEL_0``, ``LABEL_1``) and
    ``problem_type`` is stored in its config (``single_label_classification``,
    ``multi_label_classification`` or ``regression``; default: unset).
    """
    kind = kind or ("causal" if _tiny_family(family).causal else "masked")
    tokenizer = tiny_tokenizer(family, vocab_file)
    config, model_class = _config_and_class(family, kind, tokenizer, layers, hidden, heads, ffn)
    if labels is not None:
        if isinstance(labels, str) or not labels:
            raise ValueError(f"labels must be a non-empty sequence of names, not {labels!r}")
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: index for index, name in enumerate(labels)}
    if problem_type is not None:
        config.problem_type = problem_type
    torch.manual_seed(seed)
    model = model_class(config)
    model.eval()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder
