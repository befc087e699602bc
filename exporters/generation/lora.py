"""LoRA fine-tune of a decoder-only chat model on (prompt ids, summary ids) examples, and merging it back.

Why LoRA rather than a full fine-tune: the adapter of SmolLM2-135M at rank 16 is ~10 MB (fp16), so it can
be trained where a GPU is and carried to the machine that builds the pack; ``merge_adapter`` folds it into
the base weights, so the exported pack is a plain decoder and the worker knows nothing of adapters.

Examples are token ids made by :func:`write_examples` with the worker's own
:class:`~nightclerk.workers.generation.prompting.PromptEncoder`, so training prompts are the prompts served.
The loss counts only the summary tokens (and the stop token after them). The epoch kept is the one with the
lowest loss on the ``val`` part; ``eval`` is never seen here.

Runs as ``python -m nightclerk.exporters.generation.lora`` on a GPU box that has torch, transformers, peft
and gguf but none of the worker's dependencies.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nightclerk.exporters.errors import CheckpointNotFound, ExportError, TrainingDataError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
IGNORE = -100  # label id the loss skips (transformers' convention)
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Example:
    prompt: list[int]
    target: list[int]  # summary ids, stop token included
    part: str = "train"
    kind: str = ""
    reference: str = ""


@dataclass(frozen=True)
class LoraRecipe:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    learning_rate: float = 3e-4
    epochs: int = 4
    batch_size: int = 16
    warmup_fraction: float = 0.05
    seed: int = 0
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS


@dataclass
class TrainingReport:
    recipe: dict[str, Any]
    examples: dict[str, int]
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"
    seconds: float = 0.0


def read_examples(path: Path) -> list[Example]:
    if not path.is_file():
        raise TrainingDataError(f"no examples file at {path}")
    with path.open(encoding="utf-8") as handle:
        return [Example(**json.loads(line)) for line in handle if line.strip()]


def write_examples(examples: Sequence[Example], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(asdict(example)) + "\n")


def _batches(examples: Sequence[Example], size: int, rng: random.Random) -> Iterator[list[Example]]:
    """Shuffled batches of similar length: shuffle, sort windows of 32 batches by length, shuffle batches."""
    order = list(examples)
    rng.shuffle(order)
    window = size * 32
    batches: list[list[Example]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda e: len(e.prompt) + len(e.target))
        batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(batches)
    yield from batches


def _collate(batch: Sequence[Example], pad_id: int, device: Any) -> dict[str, Any]:
    import torch

    width = max(len(e.prompt) + len(e.target) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        sequence = example.prompt + example.target
        ids[row, : len(sequence)] = torch.tensor(sequence)
        labels[row, len(example.prompt) : len(sequence)] = torch.tensor(example.target)
        mask[row, : len(sequence)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def _autocast(device: Any) -> Any:
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _mean_loss(model: Any, examples: Sequence[Example], pad_id: int, batch_size: int, device: Any) -> float:
    import torch

    total = tokens = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = _collate(examples[start : start + batch_size], pad_id, device)
            with _autocast(device):
                loss = model(**batch).loss
            counted = float((batch["labels"][:, 1:] != IGNORE).sum())  # the loss shifts labels by one
            total += float(loss) * counted
            tokens += counted
    return total / max(tokens, 1.0)


def train_lora(
    model: Any,
    train: Sequence[Example],
    val: Sequence[Example],
    recipe: LoraRecipe,
    *,
    pad_id: int,
    device: Any,
    log: Callable[[str], None] = print,
) -> tuple[Any, TrainingReport]:
    """The model with the best epoch's adapter (a peft model), and what happened."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    if not train or not val:
        raise TrainingDataError(f"need train and val examples, got {len(train)} and {len(val)}")
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    config = LoraConfig(
        r=recipe.rank,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=list(recipe.target_modules),
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config).to(device)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=0.0)
    steps = recipe.epochs * math.ceil(len(train) / recipe.batch_size)
    warmup = max(1, int(steps * recipe.warmup_fraction))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    report = TrainingReport(
        recipe=asdict(recipe), examples={"train": len(train), "val": len(val)}, device=str(device)
    )
    started = time.perf_counter()
    best_loss, best_state = math.inf, None
    for epoch in range(1, recipe.epochs + 1):
        peft_model.train()
        seen = running = 0.0
        for batch_examples in _batches(train, recipe.batch_size, rng):
            batch = _collate(batch_examples, pad_id, device)
            with _autocast(device):
                loss = peft_model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += float(loss.detach()) * len(batch_examples)
            seen += len(batch_examples)
        val_loss = _mean_loss(peft_model, val, pad_id, recipe.batch_size * 2, device)
        report.epochs.append({"epoch": epoch, "train_loss": running / seen, "val_loss": val_loss})
        log(f"epoch {epoch}: train loss {running / seen:.4f}, val loss {val_loss:.4f}")
        if val_loss < best_loss:
            best_loss, report.best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}
    assert best_state is not None
    set_peft_model_state_dict(peft_model, best_state)
    report.seconds = round(time.perf_counter() - started, 1)
    return peft_model.eval(), report


def save_adapter(peft_model: Any, out_dir: Path) -> Path:
    """``adapter_config.json`` + fp16 ``adapter_model.safetensors`` (peft's own layout)."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in get_peft_model_state_dict(peft_model).items()
    }
    save_file(state, str(out_dir / ADAPTER_WEIGHTS))
    peft_model.peft_config["default"].save_pretrained(str(out_dir))
    return out_dir


def merge_adapter(base_model: Any, adapter_dir: Path) -> Any:
    """The base model with the adapter folded into its weights: a plain float32 ``LlamaForCausalLM``."""
    import torch
    from peft import PeftModel

    if not (adapter_dir / ADAPTER_CONFIG).is_file() or not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise CheckpointNotFound(
            f"{adapter_dir} is not a LoRA adapter (needs {ADAPTER_CONFIG}, {ADAPTER_WEIGHTS})"
        )
    try:
        merged = PeftModel.from_pretrained(base_model, str(adapter_dir), torch_dtype=torch.float32)
        model = merged.merge_and_unload()
    except Exception as exc:
        raise ExportError(f"merging {adapter_dir} failed: {type(exc).__name__}: {exc}") from exc
    return model.float().eval()


def greedy_targets(
    model: Any, examples: Sequence[Example], *, pad_id: int, stop_ids: Sequence[int], max_new_tokens: int,
    device: Any, batch_size: int = 32,
) -> list[list[int]]:  # fmt: skip
    """``generate`` (greedy, left padding) for each example's prompt: the new ids, stop token dropped."""
    import torch

    outputs: list[list[int]] = []
    model.eval()
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        width = max(len(e.prompt) for e in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, example in enumerate(batch):
            ids[row, width - len(example.prompt) :] = torch.tensor(example.prompt)
            mask[row, width - len(example.prompt) :] = 1
        with torch.no_grad():
            generated = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False, num_beams=1,
                max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=list(stop_ids),
            )  # fmt: skip
        for row in generated[:, width:].tolist():
            kept = []
            for token in row:
                if token in stop_ids:
                    break
                kept.append(int(token))
            outputs.append(kept)
    return outputs


def _main() -> None:
    parser = argparse.ArgumentParser(description="LoRA fine-tune SmolLM2 on summary examples")
    parser.add_argument("--gguf", type=Path, help="SmolLM2 GGUF file (else --checkpoint)")
    parser.add_argument("--checkpoint", type=Path, help="a saved LlamaForCausalLM checkpoint folder")
    parser.add_argument("--examples", type=Path, required=True, help="JSONL written by write_examples")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=LoraRecipe.epochs)
    parser.add_argument("--rank", type=int, default=LoraRecipe.rank)
    parser.add_argument("--lr", type=float, default=LoraRecipe.learning_rate)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    import torch

    from nightclerk.exporters.generation import smollm2

    if args.gguf:
        model, tokenizer = smollm2.from_gguf(args.gguf)
    elif args.checkpoint:
        model, tokenizer = smollm2.load_smollm2(args.checkpoint), smollm2.load_tokenizer(args.checkpoint)
    else:
        parser.error("give --gguf or --checkpoint")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    examples = read_examples(args.examples)
    parts = {name: [e for e in examples if e.part == name] for name in ("train", "val", "eval")}
    recipe = LoraRecipe(epochs=args.epochs, rank=args.rank, learning_rate=args.lr)
    peft_model, report = train_lora(
        model, parts["train"], parts["val"], recipe, pad_id=smollm2.PAD_TOKEN_ID, device=device
    )
    save_adapter(peft_model, args.out)
    merged = peft_model.merge_and_unload().float().eval()
    started = time.perf_counter()
    predicted = greedy_targets(
        merged, parts["eval"], pad_id=smollm2.PAD_TOKEN_ID, stop_ids=smollm2.EOS_TOKEN_IDS,
        max_new_tokens=args.max_new_tokens, device=device,
    )  # fmt: skip
    generate_s = time.perf_counter() - started
    with (args.out / "eval_predictions.jsonl").open("w", encoding="utf-8") as handle:
        for example, ids in zip(parts["eval"], predicted, strict=True):
            summary = tokenizer.decode(ids, skip_special_tokens=True).strip()
            handle.write(json.dumps({"kind": example.kind, "ids": ids, "summary": summary}) + "\n")
    summary_report = asdict(report) | {
        "eval_generate_s": round(generate_s, 1),
        "eval_examples": len(predicted),
    }
    (args.out / "training_report.json").write_text(json.dumps(summary_report, indent=2), encoding="utf-8")
    print(json.dumps(summary_report, indent=2))


if __name__ == "__main__":
    _main()
