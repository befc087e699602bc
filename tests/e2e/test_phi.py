"""No patient's words in any log, error, metric or command output: the end-to-end paths on real notes.

400 MTSamples reports go through every path that handles clinical text -- ``push`` of a CSV (with notes
too large, without an id, and poison notes that fail inference), the webhook (``nightclerk serve``: good
records, a bad record, a body that is not JSON, a wrong token), foreign messages with note text on the
queue (malformed, unsigned), a worker classifying and summarizing (signed messages, dead letters, the
change feed), and the operator's commands (``status``, ``results``, ``dlq list``, ``dlq show``, ``feed
info``). Every captured line -- worker and server logs, stdout and stderr of each command, HTTP response
bodies, the rejects file, the scraped ``/metrics`` -- is then searched for every run of five consecutive
words of every note: zero hits. The search is shown to work on ``dlq show --text``, which prints a note on
purpose. (``results --format jsonl|parquet`` exports summaries, which quote notes, by design.)
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from nightclerk.cli.csv_head import csv_head
from nightclerk.cli.worker_process import nightclerk_env
from nightclerk.exporters.tiny import POISON_WORD
from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.messages import PROCESS_CHUNK_TASK
from nightclerk.shared.signing import sign

pytestmark = pytest.mark.slow

NOTES = 400
WEBHOOK_NOTES = 100
POISON_ROWS = (3, 77, 250)
N = 5  # words in a row that count as a leak
TOKEN = "phi-test-token"
_WORD = re.compile(r"[a-z0-9]+")


def ngrams(texts: Iterable[str], n: int = N) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for text in texts:
        words = _WORD.findall(text.lower())
        found.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return found


def _phi_packs(fragile_packs: Path, tmp_path: Path) -> Path:
    from nightclerk.exporters.tiny import build_tiny_extractive

    packs = tmp_path / "packs"
    shutil.copytree(fragile_packs, packs)
    build_tiny_extractive(packs, "summarizer")
    return packs


def test_no_note_text_reaches_logs_errors_metrics_or_output(
    mtsamples_csv: Path,
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    fragile_packs: Path,
    tmp_path: Path,
    nightclerk: Callable[..., Any],
    wait_for: Callable[..., Any],
    free_port: Callable[[], int],
) -> None:
    rows = list(csv.DictReader(csv_head(mtsamples_csv, tmp_path / "head.csv", NOTES).open(encoding="utf-8")))
    for i in POISON_ROWS:  # fail inference every time: dead letters, retries, error paths
        rows[i]["transcription"] = f"{POISON_WORD} {rows[i]['transcription']}"
    rows[10]["note_id"] = ""  # rejected: no id
    pushed_rows, webhook_rows = rows[: NOTES - WEBHOOK_NOTES], rows[NOTES - WEBHOOK_NOTES :]
    notes_csv = tmp_path / "notes.csv"
    with notes_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(pushed_rows)
    texts = [row["transcription"] for row in rows]
    metrics_port = free_port()
    env = {**cluster_env, "packs_dir": str(_phi_packs(fragile_packs, tmp_path)), "message_signing_key": "k",
           "max_text_bytes": "6000", "metrics_port": str(metrics_port), "webhook_token": TOKEN}  # fmt: skip
    cluster = make_cluster(env)
    store = cluster.store()
    captured: dict[str, str] = {}

    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = nightclerk(*args, env=env)
        captured[name] = done.stdout + done.stderr
        return done

    serve_port = free_port()
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "nightclerk.cli.main", "serve", "--port", str(serve_port)],
            env=nightclerk_env(env, inherit=False), stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        cluster.start("a")
        app = make_celery(cluster.settings)
        foreign = {"tasks": ["classify"], "documents": [{"kind": "ehr_note", "text": texts[0]}]}
        for signature in ("hmac-sha256:00", sign(SecretStr("k"), foreign)):  # refused; then malformed
            app.send_task(PROCESS_CHUNK_TASK, args=[foreign], kwargs={"signature": signature},
                          queue=cluster.settings.queue)  # fmt: skip
        app.close()
        push = run("push", "push", str(notes_csv), "--mapping", "mtsamples", "--tasks", "classify,summarize",
                   "--no-progress", "--rejects", str(tmp_path / "rejects.jsonl"))  # fmt: skip
        assert push.returncode == 3, f"push exited {push.returncode}"  # some rejected; no output shown
        base = f"http://127.0.0.1:{serve_port}/v1/records/mtsamples?tasks=classify,summarize"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        wait_for(lambda: _answers(f"http://127.0.0.1:{serve_port}/openapi.json"), 60, "nightclerk serve")
        bodies = []
        for start in range(0, WEBHOOK_NOTES, 25):
            response = httpx.post(base, json=webhook_rows[start : start + 25], headers=auth, timeout=60)
            assert response.status_code == 202, f"webhook answered {response.status_code}"
            bodies.append(response.text)
        bad_record = {**webhook_rows[0], "note_id": "", "transcription": webhook_rows[1]["transcription"]}
        for payload, headers in (
            (json.dumps([bad_record]), auth),
            (texts[5][:3000] + "{", auth),  # not JSON
            (json.dumps(webhook_rows[:2]), {"Authorization": "Bearer wrong"}),
        ):
            response = httpx.post(
                base, content=payload, headers={**headers, "Content-Type": "application/json"}
            )
            assert response.status_code in (401, 422)
            bodies.append(response.text)
        captured["webhook responses"] = "\n".join(bodies)

        accepted = NOTES - 1 - sum(len(t.encode()) > 6000 for t in texts) - len(POISON_ROWS)
        wait_for(lambda: store.count() >= 2 * accepted, 300, "the results", every=1)
        wait_for(cluster.drained, 60, "the queue to drain")
        letters = cluster.dead_letters(store).letters()
        assert {d.document_id for d in letters} == {f"mtsamples:{rows[i]['note_id']}" for i in POISON_ROWS}
        for name, args in {
            "status": ("status", "--wait-s", "1"),
            "results": ("results", "--limit", "100"),
            "dlq list": ("dlq", "list"),
            "dlq show": ("dlq", "show", letters[0].document_id),
            "feed info": ("feed", "info"),
        }.items():
            assert run(name, *args).returncode == 0, f"{name} failed"  # output not shown: it is scanned
        captured["metrics"] = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        with_text = nightclerk("dlq", "show", letters[0].document_id, "--text", env=env).stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
        cluster.stop_all()
        store.close()

    captured["worker logs"] = cluster.log_text()
    captured["serve log"] = serve_log.read_text(errors="replace")
    captured["rejects file"] = (tmp_path / "rejects.jsonl").read_text()
    notes = ngrams(texts)
    hits = {name: len(ngrams([text]) & notes) for name, text in captured.items()}
    lines = sum(text.count("\n") for text in captured.values())
    print(
        f"\nPHI scan: {len(texts)} notes, {len(notes)} distinct {N}-word runs; {lines} captured lines; {hits}"
    )
    # Booleans and counts only below: a failing assert shows its operands, and these hold notes.
    scan_works = bool(ngrams([with_text]) & notes)  # it finds a note where one is printed on purpose
    assert scan_works, "the scan found no note in `dlq show --text`"
    paths = ("document_dead_lettered", "message_refused", "message_invalid", "chunk_summarized")
    logged = {event: event in captured["worker logs"] for event in paths}
    assert all(logged.values()), logged
    size_reject = "limit 6000" in captured["rejects file"]
    assert size_reject, "no note rejected for its size"
    assert hits == dict.fromkeys(captured, 0)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
