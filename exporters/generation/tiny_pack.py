"""A tiny random decoder-only summarize pack, packed like a real one -- for tests, in seconds.

Its model is :func:`tiny_llama` (vocabulary 256) and its tokenizer a word-level one over the same 256 ids:
``<pad>`` 0, ``<s>`` 1, ``</s>`` 2 (the stop token), the chat markers ``<|im_start|>`` 3 and ``<|im_end|>``
4, ``[UNK]`` 5, then words. Its "summaries" are random words; its files, manifest, graphs and variants are
those of a real pack.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from tokenizers import AddedToken, Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from nightclerk.exporters.generation.decoder_export import (
    TINY_EOS_ID,
    TINY_PAD_ID,
    export_decoder,
    quantize_decoder_int8,
    tiny_llama,
)
from nightclerk.exporters.pack_writer import PackWriter
from nightclerk.exporters.tiny import sample_texts
from nightclerk.shared.generation_io import DECODER_GRAPH
from nightclerk.shared.manifest import TOKENIZER_FILE, GenerationSpec, PackManifest, Variant

TINY_VOCAB = 256
SPECIALS = ("<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "[UNK]")
TINY_PROMPTS = {
    "default": "<|im_start|> summarize {text} <|im_end|> <|im_start|>",
    "literature": "<|im_start|> title {text} <|im_end|> <|im_start|>",
}


def tiny_tokenizer() -> Tokenizer:
    words = sorted({word for text in sample_texts(64) for word in text.split()} | {"summarize", "title"})
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for word in words + [f"w{i}" for i in range(TINY_VOCAB)]:
        if len(vocab) == TINY_VOCAB:
            break
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in SPECIALS])
    return tokenizer


def build_tiny_summarizer(
    out_dir: Path, name: str = "tiny-summarizer", *, seed: int = 0, max_input_tokens: int = 48,
    max_new_tokens: int = 12,
) -> PackManifest:  # fmt: skip
    """Write ``out_dir/name``: fp32 and int8 decoder graphs, the tokenizer and a summarize manifest."""
    model = tiny_llama(seed=seed, vocab_size=TINY_VOCAB)
    with PackWriter(out_dir, name) as pack:
        fp32 = export_decoder(model, pack.dir / "decoder.fp32.onnx")
        int8 = quantize_decoder_int8(fp32, pack.dir / "decoder.int8.onnx")
        tiny_tokenizer().save(str(pack.dir / TOKENIZER_FILE))
        variants = [
            Variant(precision="fp32", file=fp32.name, batch_independent=True,
                    graphs={DECODER_GRAPH: fp32.name}),
            Variant(precision="int8", file=int8.name, batch_independent=False, device="cpu",
                    graphs={DECODER_GRAPH: int8.name}),
        ]  # fmt: skip
        spec = GenerationSpec(
            layout="decoder-only",
            eos_token_ids=[TINY_EOS_ID],
            pad_token_id=TINY_PAD_ID,
            max_input_tokens=max_input_tokens,
            max_new_tokens=max_new_tokens,
            prompts=dict(TINY_PROMPTS),
        )
        return pack.commit(
            labels=[],
            max_tokens=max_input_tokens,
            inputs=[node.name for node in onnx.load(str(fp32)).graph.input],
            variants=variants,
            opset=17,
            source_checkpoint="random-init tiny Llama",
            method="random-init",
            data_sha256=None,
            metrics={},
            task="summarize",
            generation=spec,
        )
