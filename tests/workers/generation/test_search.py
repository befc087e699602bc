"""The worker's generation runtime against ``transformers`` ``generate`` on the same tiny random weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nightclerk.shared.errors import ConfigError, InferenceError
from nightclerk.workers.device import Placement
from nightclerk.workers.generation.decoder_only import DecoderOnlyModel, prefill_groups
from nightclerk.workers.generation.graphs import GraphRunner, RowPicker
from nightclerk.workers.generation.search import generate
from nightclerk.workers.generation.seq2seq import Seq2SeqModel
from nightclerk.workers.generation.settings import DecodeSettings

CPU = Placement("cpu", ["CPUExecutionProvider"])
PROMPTS = [
    [1, 17, 45, 99, 3],
    [1, 200, 5],
    [1, 8, 8, 8, 8, 8, 8, 60, 61, 62, 63],
    [1, 150],
    [1, 33, 34, 35, 36],
]


def _decoder(exported: Any) -> DecoderOnlyModel:
    return DecoderOnlyModel(GraphRunner(exported.graphs["decoder"], CPU), RowPicker(CPU), pad_token_id=0)


def _seq2seq(exported: Any) -> Seq2SeqModel:
    config = exported.model.config
    runners = {name: GraphRunner(path, CPU) for name, path in exported.graphs.items()}
    return Seq2SeqModel(
        runners["encoder"], runners["decoder"], runners["decoder_with_past"], RowPicker(CPU),
        decoder_start_token_id=config.decoder_start_token_id, pad_token_id=config.pad_token_id,
    )  # fmt: skip


def _reference(model: Any, prompt: list[int], settings: DecodeSettings, seq2seq: bool) -> list[int]:
    """``generate`` on one prompt (no padding), generated tokens only, stopped at the stop token."""
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=settings.max_new_tokens,
            do_sample=False,
            num_beams=settings.num_beams,
            repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
            length_penalty=settings.length_penalty,
            early_stopping=settings.early_stopping,
            eos_token_id=list(settings.eos_token_ids) or None,
            pad_token_id=settings.pad_token_id,
        )[0].tolist()
    generated = out[1:] if seq2seq else out[len(prompt) :]
    for at, token in enumerate(generated):
        if token in settings.eos_token_ids:
            return generated[: at + 1]
    return generated


SETTINGS = {
    "greedy": DecodeSettings(max_new_tokens=12, eos_token_ids=(2,)),
    "greedy-penalized": DecodeSettings(
        max_new_tokens=16, eos_token_ids=(2,), repetition_penalty=1.4, no_repeat_ngram_size=2
    ),
    "beam": DecodeSettings(max_new_tokens=10, num_beams=3, eos_token_ids=(2,)),
    "beam-penalized": DecodeSettings(
        max_new_tokens=10, num_beams=4, eos_token_ids=(2,), no_repeat_ngram_size=3, length_penalty=0.8
    ),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_decoder_only_matches_generate(tiny_decoder: Any, name: str) -> None:
    settings = SETTINGS[name]
    model = _decoder(tiny_decoder)
    for prompt in PROMPTS:
        expected = _reference(tiny_decoder.model, prompt, settings, seq2seq=False)
        assert generate(model, [prompt], settings) == [expected], prompt


def test_decoder_only_batch_equals_one_by_one(tiny_decoder: Any) -> None:
    model = _decoder(tiny_decoder)
    for settings in SETTINGS.values():
        alone = [generate(model, [prompt], settings)[0] for prompt in PROMPTS]
        assert generate(model, PROMPTS, settings) == alone


def test_prefill_groups_hold_prompts_of_similar_length_longest_first() -> None:
    assert prefill_groups([5, 3, 11, 2, 5]) == [[2], [0, 4], [1], [3]]
    assert prefill_groups([100, 95, 90, 89], spread=0.9) == [[0, 1, 2], [3]]
    assert prefill_groups([7, 7, 7]) == [[0, 1, 2]]
    assert prefill_groups([]) == []


def test_grouped_prefill_equals_one_padded_batch(tiny_decoder: Any) -> None:
    model = _decoder(tiny_decoder)
    assert len(prefill_groups([len(p) for p in PROMPTS])) > 1  # PROMPTS take the grouped path
    logits, state = model.start(PROMPTS)
    padded_logits, padded = model._prefill(PROMPTS)  # the whole batch padded to its longest prompt
    np.testing.assert_allclose(logits, padded_logits, atol=1e-5)
    assert np.array_equal(state.mask, padded.mask)
    assert np.array_equal(state.next_position, padded.next_position)
    real = padded.mask.astype(bool)  # cache entries under padding differ (zeros vs pad-token keys): masked
    for grouped, whole in zip(state.cache, padded.cache, strict=True):
        assert grouped.shape == whole.shape
        np.testing.assert_allclose(
            grouped.transpose(0, 2, 1, 3)[real], whole.transpose(0, 2, 1, 3)[real], atol=1e-5
        )
        assert not grouped.transpose(0, 2, 1, 3)[~real].any()


def test_stop_token_ends_a_row_and_max_new_tokens_bounds_the_rest(tiny_decoder: Any) -> None:
    model = _decoder(tiny_decoder)
    free = generate(model, PROMPTS, DecodeSettings(max_new_tokens=8))
    assert all(len(tokens) == 8 for tokens in free)
    stop = free[0][3]  # make the first prompt's 4th token a stop token
    stopped = generate(model, PROMPTS, DecodeSettings(max_new_tokens=8, eos_token_ids=(stop,)))
    assert stopped[0] == free[0][: free[0].index(stop) + 1]
    for tokens, unstopped in zip(stopped, free, strict=True):
        cut = unstopped.index(stop) + 1 if stop in unstopped else len(unstopped)
        assert tokens == unstopped[:cut]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_encoder_decoder_matches_generate(tiny_seq2seq: Any, name: str) -> None:
    settings = SETTINGS[name]
    eos = tiny_seq2seq.model.config.eos_token_id
    pad = tiny_seq2seq.model.config.pad_token_id
    settings = DecodeSettings(**{**settings.__dict__, "eos_token_ids": (eos,), "pad_token_id": pad})
    model = _seq2seq(tiny_seq2seq)
    for prompt in PROMPTS:
        source = [token for token in prompt if token not in (0, 1, 2)] + [eos]
        expected = _reference(tiny_seq2seq.model, source, settings, seq2seq=True)
        assert generate(model, [source], settings) == [expected], source


def test_encoder_decoder_batch_equals_one_by_one(tiny_seq2seq: Any) -> None:
    model = _seq2seq(tiny_seq2seq)
    sources = [[token for token in prompt if token > 2] for prompt in PROMPTS]
    for settings in (SETTINGS["greedy"], SETTINGS["beam"]):
        alone = [generate(model, [source], settings)[0] for source in sources]
        assert generate(model, sources, settings) == alone


def test_bad_settings_and_inputs_are_clear_errors(tiny_decoder: Any) -> None:
    with pytest.raises(ConfigError, match="max_new_tokens"):
        DecodeSettings(max_new_tokens=0)
    with pytest.raises(ConfigError, match="num_beams"):
        DecodeSettings(num_beams=0)
    model = _decoder(tiny_decoder)
    with pytest.raises(InferenceError, match="at least one token"):
        generate(model, [[1, 2], []], DecodeSettings())
    assert generate(model, [], DecodeSettings()) == []
    with pytest.raises(InferenceError, match="failed"):
        generate(model, [[1, 10_000]], DecodeSettings())  # an id beyond the vocabulary


def test_row_picker_takes_rows_on_the_cpu() -> None:
    a = np.arange(24, dtype=np.float32).reshape(4, 1, 2, 3)
    (picked,) = RowPicker(CPU).take([a], np.array([3, 3, 0]))
    assert picked.shape == (3, 1, 2, 3) and picked[0, 0, 0, 0] == 18 and picked[2, 0, 0, 0] == 0


def _cuda_placement() -> Placement | None:
    import onnxruntime as ort

    from nightclerk.workers.device import choose_placement

    placement = choose_placement("auto", ort.get_available_providers())
    return placement if placement.device == "cuda" else None


@pytest.mark.gpu
@pytest.mark.skipif(_cuda_placement() is None, reason="needs a GPU and onnxruntime's CUDA provider")
def test_cuda_io_binding_gives_the_cpu_tokens(tiny_decoder: Any, tiny_seq2seq: Any) -> None:
    cuda = _cuda_placement()
    assert cuda is not None
    on_gpu = DecoderOnlyModel(GraphRunner(tiny_decoder.graphs["decoder"], cuda), RowPicker(cuda))
    for settings in (SETTINGS["greedy"], SETTINGS["beam-penalized"]):
        assert generate(on_gpu, PROMPTS, settings) == generate(_decoder(tiny_decoder), PROMPTS, settings)
    config = tiny_seq2seq.model.config
    runners = {name: GraphRunner(path, cuda) for name, path in tiny_seq2seq.graphs.items()}
    seq2seq = Seq2SeqModel(
        runners["encoder"], runners["decoder"], runners["decoder_with_past"], RowPicker(cuda),
        decoder_start_token_id=config.decoder_start_token_id, pad_token_id=config.pad_token_id,
    )  # fmt: skip
    sources = [[token for token in prompt if token > 2] for prompt in PROMPTS]
    assert generate(seq2seq, sources, SETTINGS["beam"]) == generate(
        _seq2seq(tiny_seq2seq), sources, SETTINGS["beam"]
    )
