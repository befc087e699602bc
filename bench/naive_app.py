"""The naive build, as a user would write it: a Celery task per document running a ``transformers``
pipeline in PyTorch.

Same weights as the pack (the fine-tuned copy ``nightclerk models ensure-demo`` keeps under
``var/models/torch/<pack>``): a ``feature-extraction`` pipeline gives the token vectors, which are
mean-pooled, normalized and put through the pack's linear head, as the pack's ONNX graph does. Results
go to Celery's Redis result backend. Celery's defaults otherwise: prefork pool, one child per core, torch's
own threads.

Started by :mod:`bench.naive` as ``celery -A bench.naive_app worker`` with ``NAIVE_BROKER``,
``NAIVE_BACKEND`` and ``NAIVE_MODEL_DIR`` set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from celery import Celery, signals

app = Celery(
    "naive",
    broker=os.environ.get("NAIVE_BROKER", "redis://127.0.0.1:6379/14"),
    backend=os.environ.get("NAIVE_BACKEND", "redis://127.0.0.1:6379/14"),
)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue="naive-bench",
    result_expires=3600,
)


class Model:
    """The pipeline, the head and the labels of one pack's PyTorch copy."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import pipeline

        info = json.loads((model_dir / "torch_copy.json").read_text())
        self.labels: list[str] = info["labels"]
        self.max_tokens = int(info["max_tokens"])
        self.pipe = pipeline("feature-extraction", model=str(model_dir), tokenizer=str(model_dir))
        head = load_file(str(model_dir / info["head"]))
        self.head = torch.nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
        self.head.load_state_dict(head)
        self.head.eval()

    def classify(self, text: str) -> dict[str, float]:
        import torch

        with torch.inference_mode():
            hidden = self.pipe(
                text,
                return_tensors=True,
                tokenize_kwargs={"truncation": True, "max_length": self.max_tokens},
            )
            pooled = torch.nn.functional.normalize(hidden[0].mean(dim=0, keepdim=True), p=2.0, dim=1)
            scores = torch.softmax(self.head(pooled), dim=1)[0]
        top = torch.topk(scores, k=min(5, len(self.labels)))
        return {self.labels[int(i)]: float(s) for s, i in zip(top.values, top.indices, strict=True)}


_model: Model | None = None


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _load(**_: Any) -> None:  # in each prefork child, before its first task
    global _model
    _model = Model(Path(os.environ["NAIVE_MODEL_DIR"]))


@app.task(name="naive.classify")  # type: ignore[untyped-decorator]
def classify(text: str) -> dict[str, float]:
    global _model
    if _model is None:  # the solo pool has no worker_process_init
        _model = Model(Path(os.environ["NAIVE_MODEL_DIR"]))
    return _model.classify(text)
