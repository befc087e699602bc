from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from nightclerk.exporters.errors import CheckpointNotFound, TrainingDataError
from nightclerk.exporters.generation.decoder_export import TINY_EOS_ID, TINY_PAD_ID, tiny_llama
from nightclerk.exporters.generation.lora import (
    Example,
    LoraRecipe,
    greedy_targets,
    merge_adapter,
    read_examples,
    save_adapter,
    train_lora,
    write_examples,
)

CPU = torch.device("cpu")


def _examples(n: int, part: str, seed: int) -> list[Example]:
    """Prompts of random words; the summary is the prompt's first three tokens, then the stop token."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = [rng.randrange(3, 256) for _ in range(rng.randrange(5, 12))]
        out.append(Example(prompt=prompt, target=[*prompt[:3], TINY_EOS_ID], part=part))
    return out


@pytest.fixture(scope="module")
def trained() -> tuple[object, object]:
    recipe = LoraRecipe(rank=4, alpha=8, dropout=0.0, learning_rate=1e-2, epochs=3, batch_size=8)
    return train_lora(
        tiny_llama(seed=0), _examples(48, "train", 0), _examples(8, "val", 1), recipe, pad_id=TINY_PAD_ID,
        device=CPU, log=lambda line: None,
    )  # fmt: skip


def test_training_lowers_the_loss_and_keeps_the_best_epoch(trained: tuple[object, object]) -> None:
    _, report = trained
    epochs = report.epochs  # type: ignore[attr-defined]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    best = min(epochs, key=lambda e: e["val_loss"])
    assert report.best_epoch == best["epoch"]  # type: ignore[attr-defined]


def test_only_the_adapter_trains() -> None:
    model = tiny_llama(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = LoraRecipe(rank=2, alpha=4, dropout=0.0, learning_rate=1e-2, epochs=1, batch_size=8)
    peft_model, _ = train_lora(
        model, _examples(16, "train", 0), _examples(4, "val", 1), recipe, pad_id=TINY_PAD_ID, device=CPU,
        log=lambda line: None,
    )  # fmt: skip
    base = peft_model.get_base_model()
    for name, tensor in base.state_dict().items():
        if "lora_" not in name:
            clean = name.replace("base_layer.", "")
            assert torch.equal(tensor, before[clean]), name


def test_saved_adapter_merges_into_a_plain_model_with_the_same_outputs(
    trained: tuple[object, object], tmp_path: Path
) -> None:
    from peft import PeftModel

    peft_model, _ = trained
    adapter = save_adapter(peft_model, tmp_path / "adapter")
    unmerged = PeftModel.from_pretrained(tiny_llama(seed=0), str(adapter)).eval()
    merged = merge_adapter(tiny_llama(seed=0), adapter)
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert not any("lora" in name for name in merged.state_dict())
    ids = torch.tensor([[5, 9, 33, 70, 101, 7]])
    with torch.no_grad():
        expected, got = unmerged(input_ids=ids).logits, merged(input_ids=ids).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(
        got, tiny_llama(seed=0)(input_ids=ids).logits, atol=1e-3
    )  # it learned something


def test_greedy_targets_stop_at_the_stop_token_and_batch_like_one_by_one(
    trained: tuple[object, object],
) -> None:
    peft_model, _ = trained
    model = peft_model.merge_and_unload()  # type: ignore[attr-defined]
    examples = _examples(5, "eval", 2)
    batched = greedy_targets(
        model,
        examples,
        pad_id=TINY_PAD_ID,
        stop_ids=(TINY_EOS_ID,),
        max_new_tokens=6,
        device=CPU,
        batch_size=5,
    )
    alone = [
        greedy_targets(model, [e], pad_id=TINY_PAD_ID, stop_ids=(TINY_EOS_ID,), max_new_tokens=6, device=CPU)[
            0
        ]
        for e in examples
    ]
    assert batched == alone
    assert all(TINY_EOS_ID not in ids and len(ids) <= 6 for ids in batched)


def test_examples_round_trip_and_errors(tmp_path: Path) -> None:
    examples = _examples(3, "train", 0)
    write_examples(examples, tmp_path / "ex.jsonl")
    assert read_examples(tmp_path / "ex.jsonl") == examples
    with pytest.raises(TrainingDataError, match="no examples file"):
        read_examples(tmp_path / "missing.jsonl")
    with pytest.raises(TrainingDataError, match="need train and val"):
        train_lora(tiny_llama(), examples, [], LoraRecipe(), pad_id=TINY_PAD_ID, device=CPU)
    with pytest.raises(CheckpointNotFound, match="not a LoRA adapter"):
        merge_adapter(tiny_llama(), tmp_path)
