"""The dead letters beside the results, on SQLite and on PostgreSQL."""

from __future__ import annotations

from nightclerk.shared.documents import EhrNote, RepairTicket
from nightclerk.shared.store import DeadLetterStore, Failure, ResultStore


def _failure(document: EhrNote | RepairTicket, task: str = "classify", attempts: int = 3) -> Failure:
    return Failure(document, task, "ehr-specialty", "v1", "InferenceError: inference failed", attempts)


def test_a_failure_is_kept_with_its_document_and_adds_up_attempts(store: ResultStore) -> None:
    letters = DeadLetterStore(store)
    assert letters.count() == {} and letters.letters() == []  # no table yet: nothing, not an error
    note = EhrNote(source="epic", source_id="n1", text="knee pain after a fall", metadata={"dept": "ortho"})
    letters.record([_failure(note)], chunk_id="c1", worker_id="w1")
    letters.record([_failure(note, attempts=2)], chunk_id="c2", worker_id="w2")
    (letter,) = letters.letters()
    assert (letter.document_id, letter.task, letter.kind, letter.attempts) == (
        "epic:n1",
        "classify",
        "ehr_note",
        5,
    )
    assert (letter.chunk_id, letter.worker_id) == ("c2", "w2")
    assert letter.first_failed_at <= letter.last_failed_at
    assert letter.as_document() == note  # the document comes back whole, for requeueing


def test_letters_are_filtered_counted_and_deleted(store: ResultStore) -> None:
    letters = DeadLetterStore(store)
    note = EhrNote(source="epic", source_id="n1", text="a note")
    ticket = RepairTicket(source="cmms", source_id="t1", text="pump leak")
    letters.record(
        [_failure(note), _failure(note, "summarize"), _failure(ticket)], chunk_id="c", worker_id="w"
    )
    assert letters.count() == {"classify": 2, "summarize": 1}
    assert [d.document_id for d in letters.letters(kind="repair_ticket")] == ["cmms:t1"]
    assert len(letters.letters(document_ids=["epic:n1"])) == 2
    assert len(letters.letters(task="summarize")) == 1 and len(letters.letters(limit=1)) == 1
    assert letters.delete(letters.letters(document_ids=["epic:n1"], task="classify")) == 1
    assert letters.count() == {"classify": 1, "summarize": 1}
