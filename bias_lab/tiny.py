"""Tiny randomly initialised models of every family, built offline.

Tests, benchmarks and demos use them instead of downloading checkpoints. Each is saved with
``save_pretrained`` so loading it goes through exactly the code path of a real checkpoint.
BERT-style models use a WordPiece vocabulary (a real one when ``vocab_file`` is given, otherwise a
small one built from the word list below); the byte-level BPE families get a BPE trained here with
``tokenizers`` on sentences made from the same words.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .models import quiet_transformers

TINY_FAMILIES = ("bert", "roberta", "distilbert", "gpt2", "gpt-neo", "llama")

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


def tiny_tokenizer(family: str, vocab_file: str | Path | None = None):
    from transformers import GPT2Tokenizer, RobertaTokenizer

    if family in ("bert", "distilbert"):
        return _bert_tokenizer(vocab_file)
    if family == "roberta":
        from tokenizers import AddedToken

        vocab, merges = _byte_level_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        # As in roberta-base: the mask absorbs the space before it, so it predicts "Ġword" tokens.
        mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
        return RobertaTokenizer(vocab=vocab, merges=merges, mask_token=mask, model_max_length=128)
    if family in ("gpt2", "gpt-neo", "llama"):
        vocab, merges = _byte_level_bpe(["<|endoftext|>"])
        return GPT2Tokenizer(vocab=vocab, merges=merges, model_max_length=128)
    raise ValueError(f"unknown tiny family {family!r}: use one of {', '.join(TINY_FAMILIES)}")


def _config_and_class(family: str, kind: str, tokenizer, layers: int, hidden: int, heads: int, ffn: int):
    import transformers as tf

    vocab_size = len(tokenizer)
    if family == "bert":
        config = tf.BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=128,
                               pad_token_id=tokenizer.pad_token_id)
        classes = {"masked": tf.BertForMaskedLM, "encoder": tf.BertModel, "pretraining": tf.BertForPreTraining,
                   "classifier": tf.BertForSequenceClassification}
        return config, classes[kind]
    if family == "roberta":
        config = tf.RobertaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                  num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=130,
                                  type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        return config, tf.RobertaForMaskedLM if kind == "masked" else tf.RobertaModel
    if family == "distilbert":
        config = tf.DistilBertConfig(vocab_size=vocab_size, dim=hidden, n_layers=layers, n_heads=heads,
                                     hidden_dim=ffn, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
        return config, tf.DistilBertForMaskedLM if kind == "masked" else tf.DistilBertModel
    eos = tokenizer.eos_token_id
    if family == "gpt2":
        config = tf.GPT2Config(vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads, n_inner=ffn,
                               n_positions=128, bos_token_id=eos, eos_token_id=eos)
        return config, tf.GPT2LMHeadModel if kind == "causal" else tf.GPT2Model
    if family == "gpt-neo":
        config = tf.GPTNeoConfig(vocab_size=vocab_size, hidden_size=hidden, num_layers=layers, num_heads=heads,
                                 intermediate_size=ffn, max_position_embeddings=128, window_size=16,
                                 attention_types=[[["global", "local"], max(1, layers // 2)]] if layers % 2 == 0
                                 else [[["global"], layers]], bos_token_id=eos, eos_token_id=eos)
        return config, tf.GPTNeoForCausalLM if kind == "causal" else tf.GPTNeoModel
    if family == "llama":
        config = tf.LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                                intermediate_size=ffn, max_position_embeddings=128,
                                bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
        return config, tf.LlamaForCausalLM if kind == "causal" else tf.LlamaModel
    raise ValueError(f"unknown tiny family {family!r}: use one of {', '.join(TINY_FAMILIES)}")


def build_tiny_model(family: str, folder: str | Path, *, kind: str | None = None, layers: int = 2,
                     hidden: int = 32, heads: int = 4, ffn: int = 64, seed: int = 0,
                     vocab_file: str | Path | None = None) -> Path:
    """Build a tiny random model of ``family`` and save it (with its tokenizer) to ``folder``.

    ``kind`` is ``masked`` (default for encoders), ``causal`` (default for decoders), ``encoder``, or
    for BERT ``pretraining`` (masked-LM and next-sentence heads, like bert-base-uncased).
    """
    causal = family in ("gpt2", "gpt-neo", "llama")
    kind = kind or ("causal" if causal else "masked")
    tokenizer = tiny_tokenizer(family, vocab_file)
    config, model_class = _config_and_class(family, kind, tokenizer, layers, hidden, heads, ffn)
    torch.manual_seed(seed)
    model = model_class(config)
    model.eval()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder
