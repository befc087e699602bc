"""The Markdown of a run, rendered from its JSON (``python -m bench.report bench/results/bench-cpu.json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.machine import one_line
from bench.stats import Spread

E2E_TARGET = 0.90
NAIVE_TARGET = 3.0
RAY_TARGET = 1.0


def cell(spread: dict[str, Any], digits: int = 1) -> str:
    """A spread from the JSON as the tables print it: ``72.0 (67.0–72.8)``."""
    return Spread(list(spread.get("values") or [])).cell(digits, dash="–")


def median(spread: dict[str, Any]) -> float | None:
    return spread.get("median") if spread.get("values") else None


def ratio(a: float | None, b: float | None, target: float | None = None) -> str:
    if a is None or not b:
        return "—"
    value = a / b
    text = f"{value:.2f}×"
    if target is None:
        return text
    return f"**{text}** ✓" if value >= target else f"{text} ✗ (target {target:g}×)"


def _e2e_best(results: dict[str, Any], corpus: str) -> dict[str, Any] | None:
    rows = [r for r in results.get("e2e", []) if r["corpus"] == corpus]
    return max(rows, key=lambda r: median(r["docs_per_s"]) or 0.0, default=None)


def _e2e_with(results: dict[str, Any], corpus: str, workers: int) -> dict[str, Any] | None:
    return next(
        (r for r in results.get("e2e", []) if r["corpus"] == corpus and r["workers"] == workers), None
    )


def _limit(results: dict[str, Any]) -> list[str]:
    lines = [
        "## 1. The limit: bare ONNX Runtime, in process",
        "",
        "The worker's own runtime called in one process on all documents at once: tokenization, length "
        "sort, batching, inference; no queue, no store.",
        "",
        "| corpus | pack | variant | tokens | binding | docs/s |",
        "| --- | --- | --- | ---: | --- | ---: |",
    ]
    for r in results["limit"]:
        variant = r["precision"] + (f" ({r['recipe']})" if r.get("recipe") else "")
        value = f"failed: {r['error']}" if r.get("error") else cell(r)
        lines.append(
            f"| {r['corpus']} | {r['pack']} | {variant} | {r['max_tokens']} | {r['binding']} | {value} |"
        )
    return lines


def _e2e(results: dict[str, Any]) -> list[str]:
    lines = [
        "## 2. nightclerk end to end",
        "",
        "`push` → Redis → `nightclerk worker` processes → PostgreSQL, from the first document pushed to the "
        "last result stored; the workers are started and their packs verified before the clock starts. "
        '"Bare" is (1) with the variant the worker picks, at the pack\'s 128 tokens, measured on the same '
        "documents right before each repetition. A repetition pushes each corpus's slice several times, "
        "each under its own source name (documents: what one repetition pushes): one slice of work orders "
        "is two chunks and one of notes five, too few for two workers to share without one idling at the "
        "end. The workers serve the corpus's pack alone, as a queue per document kind would run them. "
        "Memory: the workers' peak PSS and the growth of Redis's `used_memory`.",
        "",
        "| corpus | documents | workers × threads | bare docs/s | nightclerk docs/s | ratio (target ≥ 0.90) "
        "| workers' peak PSS MiB | Redis growth MiB |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["e2e"]:
        lines.append(
            f"| {r['corpus']} | {r['docs']:,} | {r['workers']} × {r['threads_per_worker']} "
            f"| {cell(r['bare_docs_per_s'])} "
            f"| {cell(r['docs_per_s'])} "
            f"| {ratio(median(r['docs_per_s']), median(r['bare_docs_per_s']), E2E_TARGET)} "
            f"| {cell(r['peak_workers_pss_mib'], 0)} | {cell(r['peak_redis_growth_mib'], 1)} |"
        )
    return lines


def _naive(results: dict[str, Any]) -> list[str]:
    naive = results["naive"]
    lines = [
        "## 3. The naive build: a Celery task per document, `transformers` pipeline in PyTorch",
        "",
        "The same fine-tuned weights (the PyTorch copy the pack build keeps), the same documents, results in "
        "Celery's Redis backend. Two configurations: Celery's defaults (prefork, a child per core, torch's "
        "own threads in each) and one child with every core. nightclerk's figure is its better worker count "
        "from (2); the ratio is against the faster naive configuration.",
        "",
    ]
    for corpus, check in naive["checks"].items():
        if "skipped" in check:
            lines.append(f"- {corpus}: skipped: {check['skipped']}")
        else:
            lines.append(
                f"- {corpus}: the PyTorch copy's top label agrees with the pack's fp32 ONNX on "
                f"{check['top_label_agreement_with_fp32']} documents"
            )
    lines += [
        "",
        "| corpus | naive, prefork × cores docs/s | naive, 1 child docs/s | naive peak PSS MiB "
        "| nightclerk docs/s | nightclerk ÷ faster naive (target ≥ 3) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    corpora = dict.fromkeys(r["corpus"] for r in naive["rows"])
    for corpus in corpora:
        rows = {r["concurrency"]: r for r in naive["rows"] if r["corpus"] == corpus}
        many = max(rows)
        best_naive = max(median(r["docs_per_s"]) or 0.0 for r in rows.values())
        ours = _e2e_best(results, corpus)
        ours_median = median(ours["docs_per_s"]) if ours else None
        peak = max((median(r["peak_worker_pss_mib"]) or 0.0) for r in rows.values())
        lines.append(
            f"| {corpus} | {cell(rows[many]['docs_per_s']) if many > 1 else '—'} "
            f"| {cell(rows[1]['docs_per_s']) if 1 in rows else '—'} | {peak:.0f} "
            f"| {cell(ours['docs_per_s']) if ours else '—'} "
            f"| {ratio(ours_median, best_naive, NAIVE_TARGET)} |"
        )
    return lines


def _ray(results: dict[str, Any]) -> list[str]:
    lines = [
        "## 4. Ray Data: `map_batches`, actor pool, the same pack",
        "",
        "Each actor runs the worker's own runtime on batches of the worker's batch size; the job reads the "
        'documents from memory and writes Parquet. "Per job" includes starting the actor pool, as every '
        'Ray Data job does; "steady" is the documents over the span from the first batch\'s start to the '
        "last batch's end, as the actors clock them (no pool start, no job planning: nightclerk's workers "
        "are started before its clock too). nightclerk is compared with the steady figure, at the same "
        "process count. Memory: Ray's processes (GCS, raylet, actors, object store) without and with the "
        "driver, against nightclerk's workers plus Redis's growth.",
        "",
        "| corpus | processes | Ray per job docs/s | Ray steady docs/s | nightclerk docs/s "
        "| ratio to steady (target ≥ 1.0) | Ray peak PSS MiB (with driver) | nightclerk peak MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["ray"]:
        ours = _e2e_with(results, r["corpus"], r["actors"])
        if r.get("error"):
            lines.append(f"| {r['corpus']} | {r['actors']} | failed: {r['error']} | | | | | |")
            continue
        ours_median = median(ours["docs_per_s"]) if ours else None
        ours_mem = (
            (median(ours["peak_workers_pss_mib"]) or 0.0) + (median(ours["peak_redis_growth_mib"]) or 0.0)
            if ours
            else None
        )
        lines.append(
            f"| {r['corpus']} | {r['actors']} | {cell(r['docs_per_s'])} | {cell(r['steady_docs_per_s'])} "
            f"| {cell(ours['docs_per_s']) if ours else '—'} "
            f"| {ratio(ours_median, median(r['steady_docs_per_s']), RAY_TARGET)} "
            f"| {r['peak_pss_mib_without_driver']:.0f} ({r['peak_pss_mib_with_driver']:.0f}) "
            f"| {'—' if ours_mem is None else f'{ours_mem:.0f}'} |"
        )
    return lines


def _generation(results: dict[str, Any]) -> list[str]:
    gen = results["generation"]
    lines = ["## 5. Generation: the worker's decoder runtime against `transformers` `generate`", ""]
    if "results" not in gen:
        return [*lines, f"Not measured: {gen.get('skipped') or gen.get('error')}."]
    names = list(gen["results"][0]["median_tokens_per_s"])
    lines += [
        f"SmolLM2-135M-Instruct, greedy, {gen['new_tokens']} new tokens per prompt, real MTSamples notes "
        f"({gen['prompt_tokens']['min']}–{gen['prompt_tokens']['max']} prompt tokens), {gen['rounds']} "
        "rounds, tokens/s with prefill (`bench/generation_vs_transformers.py`).",
        "",
        "| batch | " + " | ".join(names) + " | " + " | ".join(f"{n} ÷ ref" for n in gen["reference"]) + " |",
        "| ---: | "
        + " | ".join("---:" for _ in names)
        + " | "
        + " | ".join("---:" for _ in gen["reference"])
        + " |",
    ]
    for row in gen["results"]:
        values = [row["median_tokens_per_s"][n] for n in names]
        ratios = [row["ratio_to_transformers"][n] for n in gen["reference"]]
        lines.append(
            f"| {row['batch_size']} | "
            + " | ".join(f"{v:.1f}" for v in values)
            + " | "
            + " | ".join(f"{r:.2f}×" for r in ratios)
            + " |"
        )
    return lines


def _growth(results: dict[str, Any]) -> list[str]:
    growth = results["growth"]
    lines = ["## 6. Cost of growth: documents queued before one worker starts", ""]
    if "rows" not in growth:
        return [*lines, f"Not measured: {growth['skipped']}."]
    lines += [
        f"{growth['corpus']}, pushed with no worker running, then drained by one worker (one run per level). "
        "Redis holds the queue and the chunk ledger's compressed copies.",
        "",
        "| queued | push s | Redis held MiB | MiB per 1k docs | drain docs/s | docs/s per quarter "
        "| worker peak PSS MiB |",
        "| ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in growth["rows"]:
        quarters = " / ".join(f"{q:.0f}" for q in r["quarter_docs_per_s"])
        lines.append(
            f"| {r['queued']:,} | {r['push_seconds']:.1f} | {r['redis_backlog_mib']:.1f} "
            f"| {1000 * r['redis_backlog_mib'] / r['queued']:.2f} | {r['drain_docs_per_s']:.1f} | {quarters} "
            f"| {r['peak_worker_mib']:.0f} |"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    lines = [
        f"# nightclerk benchmark ({results['device']})",
        "",
        f"Measured {results['when']} on {one_line(results['machine'])}.",
        f"`{results['command']}`: {results['docs']} documents per corpus (each corpus's own count below), "
        f"{results['reps']} repetitions; "
        "figures are medians (min–max). Store: "
        f"{results.get('store', '—')}. {results.get('total_seconds', 0) / 60:.0f} minutes in all.",
        "",
        "Corpora: "
        + "; ".join(
            f"{c['title']} → `{c['pack']}` ({c['docs']})" for c in results.get("corpora", {}).values()
        )
        + ".",
    ]
    for line in results.get("missing", []):
        lines.append(f"- {line}")
    for key, part in (
        ("limit", _limit),
        ("e2e", _e2e),
        ("naive", _naive),
        ("ray", _ray),
        ("generation", _generation),
        ("growth", _growth),
    ):
        if key in results:
            lines += ["", *part(results)]
    lines += ["", "## 7. GPU", ""]
    if results["device"] == "cuda":
        lines.append(f"This run: {', '.join(results['machine']['gpus'])}, CUDA execution provider.")
    else:
        lines.append(
            "No GPU on this machine. On one, `make bench` picks CUDA by itself and writes bench-cuda.md: "
            "fp32 and fp16 variants on the CUDA provider, each also with IO binding, one worker per GPU."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())), end="")
