from __future__ import annotations

import json
import logging

import pytest

from nightclerk.shared.logging import configure_logging, get_logger


def test_json_lines_and_text_fields_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    get_logger("t").info("chunk_done", document_id="s:1", text="Patient Jane Roe", count=3)
    logging.getLogger("celery.worker").info("from stdlib %s", "ok")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["event"] == "chunk_done" and lines[0]["count"] == 3
    assert "Jane Roe" not in json.dumps(lines)
    assert lines[1]["event"] == "from stdlib ok" and lines[1]["logger"] == "celery.worker"


def test_tracebacks_carry_no_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    note = "Patient Jane Roe"  # a local the traceback must not show
    try:
        raise ValueError("bad batch")
    except ValueError:
        get_logger("t").exception("failed", size=len(note))
    output = capsys.readouterr().err
    assert "bad batch" in output
    assert "Jane Roe" not in output


def test_celery_lines_that_quote_a_message_body_are_cut(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    logging.getLogger("celery.worker.consumer.consumer").error(
        "Received invalid task message: %s\nThe full contents of the message body was:\n%s",
        "Refusing pickle",
        "b'Patient Jane Roe'",
    )
    logging.getLogger("kombu.messaging").error("Can't decode message body: %r (raw:%r)", "x", "Jane Roe")
    output = capsys.readouterr().err
    assert "Refusing pickle" in output and "withheld" in output
    assert "Jane Roe" not in output
