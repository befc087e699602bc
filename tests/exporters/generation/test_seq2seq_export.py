"""Encoder-decoder export: contract names, encoder parity and greedy-decode parity with ``model.generate``.

Each tiny model (T5, BART) is exported once per module; the decode loop below is the one a worker runs:
encoder once, first-step decoder on the start token, then decoder_with_past fed its own presents and the
first step's cross cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nightclerk.exporters.errors import ExportError
from nightclerk.exporters.generation.seq2seq_export import (
    Seq2SeqShape,
    export_seq2seq,
    seq2seq_shape,
    tiny_bart,
    tiny_t5,
)
from nightclerk.shared.generation_io import (
    ATTENTION_MASK,
    DECODER_GRAPH,
    DECODER_WITH_PAST_GRAPH,
    ENCODER_ATTENTION_MASK,
    ENCODER_GRAPH,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LAST_HIDDEN_STATE,
    LOGITS,
    seq2seq_past_names,
    seq2seq_present_names,
)

ATOL = 1e-4
STEPS = 8
LENGTHS = (9, 5)
MAKERS = {"t5": tiny_t5, "bart": tiny_bart}


@dataclass
class Exported:
    model: nn.Module
    shape: Seq2SeqShape
    paths: dict[str, Path]
    sessions: dict[str, ort.InferenceSession]


@pytest.fixture(scope="module", params=sorted(MAKERS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    model = MAKERS[request.param]()
    paths = export_seq2seq(model, tmp_path_factory.mktemp(f"seq2seq-{request.param}"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {
        graph: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for graph, path in paths.items()
    }
    return Exported(model, seq2seq_shape(model), paths, sessions)


def sources(shape: Seq2SeqShape) -> tuple[np.ndarray, np.ndarray]:
    """Two sources of different lengths, right-padded with the pad token, mask 0 on padding."""
    rng = np.random.default_rng(7)
    ids = rng.integers(3, shape.vocab_size, (len(LENGTHS), max(LENGTHS)), dtype=np.int64)
    mask = (np.arange(max(LENGTHS))[None, :] < np.array(LENGTHS)[:, None]).astype(np.int64)
    ids[mask == 0] = shape.pad_token_id
    return ids, mask


def test_graphs_have_the_contract_names_in_order(exported: Exported) -> None:
    layers = exported.shape.decoder_layers
    expected = {
        ENCODER_GRAPH: ([INPUT_IDS, ATTENTION_MASK], [LAST_HIDDEN_STATE]),
        DECODER_GRAPH: (
            [INPUT_IDS, ENCODER_ATTENTION_MASK, ENCODER_HIDDEN_STATES],
            [LOGITS, *seq2seq_present_names(layers, "decoder"), *seq2seq_present_names(layers, "encoder")],
        ),
        DECODER_WITH_PAST_GRAPH: (
            [
                INPUT_IDS,
                ENCODER_ATTENTION_MASK,
                *seq2seq_past_names(layers, "decoder"),
                *seq2seq_past_names(layers, "encoder"),
            ],
            [LOGITS, *seq2seq_present_names(layers, "decoder")],
        ),
    }
    assert {graph: path.name for graph, path in exported.paths.items()} == {
        graph: f"{graph}.onnx" for graph in expected
    }
    for graph, (inputs, outputs) in expected.items():
        session = exported.sessions[graph]
        assert [node.name for node in session.get_inputs()] == inputs, graph
        assert [node.name for node in session.get_outputs()] == outputs, graph
    assert layers == 2 and exported.shape.heads == 4 and exported.shape.head_dim == 8


def test_encoder_matches_pytorch_on_padded_batch(exported: Exported) -> None:
    ids, mask = sources(exported.shape)
    (hidden,) = exported.sessions[ENCODER_GRAPH].run(None, {INPUT_IDS: ids, ATTENTION_MASK: mask})
    with torch.no_grad():
        expected = exported.model.get_encoder()(  # type: ignore[operator]
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        ).last_hidden_state
    assert hidden.shape == (len(LENGTHS), max(LENGTHS), exported.shape.d_model)
    np.testing.assert_allclose(hidden, expected.numpy(), atol=ATOL, rtol=0)


def onnx_greedy(exported: Exported, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Greedy decode with the three graphs, as ``generate`` does it: rows that produced eos get pad."""
    shape, sessions = exported.shape, exported.sessions
    layers, batch, source = shape.decoder_layers, ids.shape[0], ids.shape[1]
    (hidden,) = sessions[ENCODER_GRAPH].run(None, {INPUT_IDS: ids, ATTENTION_MASK: mask})
    start = np.full((batch, 1), shape.decoder_start_token_id, dtype=np.int64)
    first = sessions[DECODER_GRAPH].run(
        None, {INPUT_IDS: start, ENCODER_ATTENTION_MASK: mask, ENCODER_HIDDEN_STATES: hidden}
    )
    logits, self_cache, cross_cache = first[0], first[1 : 1 + 2 * layers], first[1 + 2 * layers :]
    assert len(cross_cache) == 2 * layers
    for tensor in cross_cache:
        assert tensor.shape == (batch, shape.heads, source, shape.head_dim)
    cross_feed = dict(zip(seq2seq_past_names(layers, "encoder"), cross_cache, strict=True))
    tokens: list[np.ndarray] = []
    step_logits: list[np.ndarray] = []
    finished = np.zeros(batch, dtype=bool)
    for step in range(STEPS):
        for tensor in self_cache:
            assert tensor.shape == (batch, shape.heads, step + 1, shape.head_dim)
        assert logits.shape == (batch, 1, shape.vocab_size)
        step_logits.append(logits[:, -1])
        chosen = np.where(finished, shape.pad_token_id, logits[:, -1].argmax(-1))
        tokens.append(chosen)
        finished |= chosen == shape.eos_token_id
        if finished.all() or step == STEPS - 1:
            break
        feeds: dict[str, Any] = {INPUT_IDS: chosen[:, None].astype(np.int64), ENCODER_ATTENTION_MASK: mask}
        feeds |= dict(zip(seq2seq_past_names(layers, "decoder"), self_cache, strict=True))
        feeds |= cross_feed
        logits, *self_cache = sessions[DECODER_WITH_PAST_GRAPH].run(None, feeds)
    return np.stack(tokens, axis=1), step_logits


def test_greedy_decode_matches_generate(exported: Exported) -> None:
    ids, mask = sources(exported.shape)
    tokens, step_logits = onnx_greedy(exported, ids, mask)
    with torch.no_grad():
        generated = exported.model.generate(  # type: ignore[operator]
            torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            max_new_tokens=STEPS,
            do_sample=False,
            num_beams=1,
            output_logits=True,
            return_dict_in_generate=True,
        )
    expected = generated.sequences[:, 1:].numpy()  # generate prepends the decoder start token
    assert expected.shape[1] == STEPS, "eos ended generate early: the decode would not exercise the cache"
    assert len(set(expected.ravel().tolist())) > 2, "decoding collapsed to one token: widen the tiny init"
    np.testing.assert_array_equal(tokens, expected)
    assert len(step_logits) == len(generated.logits)
    for step, (ours, theirs) in enumerate(zip(step_logits, generated.logits, strict=True)):
        np.testing.assert_allclose(ours, theirs.numpy(), atol=ATOL, rtol=0, err_msg=f"step {step}")


def test_export_failure_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="encoder graph"):
        export_seq2seq(tiny_bart(), tmp_path / "bad-opset", opset=5)

    class Broken(nn.Module):
        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("lm head exploded")

    model = tiny_t5()
    model.lm_head = Broken()
    with pytest.raises(ExportError, match="decoder graph failed: RuntimeError: lm head exploded"):
        export_seq2seq(model, tmp_path / "broken")
    with pytest.raises(ExportError, match="encoder-decoder config"):
        export_seq2seq(nn.Linear(2, 2), tmp_path / "not-seq2seq")
