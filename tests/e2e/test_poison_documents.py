"""Documents that make inference fail every time, through a real worker, then ``nightclerk dlq``.

The ``ehr-specialty`` pack here fails in ONNX Runtime on any note holding ``POISON_WORD`` (its embedding
table stops short of that token: ``fragile_packs``). Six poison notes hide among 300 in chunks of 50: each is
found, tried three times alone and dead-lettered with its reason, and the rest of its chunk is stored. An
operator lists and inspects them, deploys a pack that can read them, and requeues them: they are stored
and the dead letters are empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nightclerk.exporters.tiny import POISON_WORD, sample_texts

pytestmark = pytest.mark.slow

NOTES = 300
POISON_AT = (0, 7, 49, 50, 181, 299)


def test_poison_notes_are_dead_lettered_alone_and_requeued_once_fixed(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    fragile_packs: Path,
    tiny_packs: Path,
    tmp_path: Path,
    push: Callable[..., Any],
    nightclerk: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    texts = sample_texts(NOTES, seed=3)
    notes = tmp_path / "notes.jsonl"
    with notes.open("w") as handle:
        for i, text in enumerate(texts):
            body = f"{POISON_WORD} {text}" if i in POISON_AT else text
            handle.write(json.dumps({"id": f"n{i}", "body": body}) + "\n")
    poison = {f"ward7:n{i}" for i in POISON_AT}
    env = {**cluster_env, "packs_dir": str(fragile_packs), "chunk_docs": "50", "chunk_max_docs": "50"}
    cluster = make_cluster(env)
    store = cluster.store()
    try:
        cluster.start("a")
        columns = ("--kind", "ehr_note", "--source", "ward7", "--id-column", "id", "--text-column", "body")
        push(notes, env, *columns, mapping=None)
        wait_for(lambda: store.count() >= NOTES - len(poison), 120, "the healthy notes")
        wait_for(cluster.drained, 60, "the queue to drain")
        stored = {r.document_id for r in store.rows()}
        letters = cluster.dead_letters(store).letters()

        listed = nightclerk("dlq", "list", "--format", "jsonl", env=env)
        shown = nightclerk("dlq", "show", sorted(poison)[0], env=env)
        status = nightclerk("status", "--wait-s", "1", env=env)

        cluster.stop("a")  # the operator deploys a pack that reads every token, then requeues
        fixed = {**env, "packs_dir": str(tiny_packs)}
        cluster.start("b", packs_dir=str(tiny_packs))
        requeued = nightclerk("dlq", "requeue", "--all", env=fixed)
        wait_for(lambda: store.count() >= NOTES, 120, "the requeued notes")
        wait_for(cluster.drained, 60, "the queue to drain")
        after = list(store.rows())
        left = cluster.dead_letters(store).letters()
    finally:
        cluster.stop_all()
        store.close()

    assert stored == {f"ward7:n{i}" for i in range(NOTES)} - poison  # every chunk's healthy notes stored
    assert {d.document_id for d in letters} == poison
    assert all(d.attempts == 3 and d.task == "classify" and d.pack_name == "ehr-specialty" for d in letters)
    assert all(d.reason.startswith("InferenceError: pack ehr-specialty: inference failed") for d in letters)
    assert (
        listed.returncode == 0
        and {json.loads(line)["document_id"] for line in listed.stdout.splitlines()} == poison
    )
    assert shown.returncode == 0 and "attempts: 3" in shown.stdout and POISON_WORD not in shown.stdout
    assert status.returncode == 0 and "6 classify" in status.stdout, status.stdout
    events = cluster.events("document_dead_lettered")
    assert sorted(e["document_id"] for e in events) == sorted(poison)
    assert requeued.returncode == 0 and "requeued 6 of 6" in requeued.stdout
    assert len(after) == len({r.document_id for r in after}) == NOTES and left == []
    log = cluster.log_text()
    assert POISON_WORD not in log and texts[1] not in log  # reasons and events carry ids, never text
