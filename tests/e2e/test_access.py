"""Who may put work on the queue, and how the pipeline reaches a Redis that asks who is calling.

- With a signing key, a worker refuses pickled, unsigned, wrongly signed and altered messages and runs only
  what a producer holding the key signed.
- A password-protected redis-server and a TLS one (``rediss://``, certificate checked against the test's
  own CA), both started by the test: push, worker, status and the change feed work through them; a wrong
  password or an unknown CA is a clear error that shows no secret.

The webhook's token (tests/producers/test_webhook.py) and tampered packs (tests/workers/test_worker_main.py,
tests/shared/test_manifest.py) are refused in their own tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.documents import RepairTicket
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.signing import sign

pytestmark = pytest.mark.slow

KEY = "signing-key-for-tests"
SECRET = "PHI-SECRET-7f3a"


def _chunk(source_id: str) -> dict[str, Any]:
    ticket = RepairTicket(source="forged", source_id=source_id, text=f"hydraulic leak {SECRET}")
    return ChunkMessage(tasks=["classify"], documents=[ticket]).model_dump(mode="json")


def test_only_chunks_signed_with_the_key_are_run(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    env = {**cluster_env, "message_signing_key": KEY}
    cluster = make_cluster(env)
    store = cluster.store()
    app = make_celery(cluster.settings)
    queue = cluster.settings.queue
    altered = _chunk("altered")
    signature = sign(SecretStr(KEY), altered)
    altered["documents"][0]["text"] = "replaced after signing"
    sends = [  # (message, kwargs, serializer)
        (_chunk("pickled"), {"signature": sign(SecretStr(KEY), _chunk("pickled"))}, "pickle"),
        (_chunk("unsigned"), {}, "json"),
        (_chunk("other-key"), {"signature": sign(SecretStr("another key"), _chunk("other-key"))}, "json"),
        (altered, {"signature": signature}, "json"),
    ]
    for message, kwargs, serializer in sends:
        app.send_task(PROCESS_CHUNK_TASK, args=[message], kwargs=kwargs, queue=queue, serializer=serializer)
    app.close()
    try:
        cluster.start("a")
        push(tickets(40), env)
        wait_for(lambda: store.count() >= 40, 60, "the signed push's results")
        wait_for(cluster.drained, 60, "the queue to drain")
        rows = list(store.rows())
    finally:
        cluster.stop_all()
        store.close()
    assert len(rows) == 40 and not any(r.document_id.startswith("forged:") for r in rows)
    refused = sorted(e["reason"] for e in cluster.events("message_refused"))
    assert refused == ["bad signature", "bad signature", "unsigned"]
    log = cluster.log_text()
    assert "pickle" in log  # refused by the JSON-only consumer before it reaches the task
    assert SECRET not in log


def _tls_files(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=nightclerk-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}


@pytest.mark.parametrize("tls", [False, True], ids=["password", "password+tls"])
def test_the_pipeline_runs_through_a_redis_with_a_password_and_tls(
    tls: bool,
    private_redis: Callable[..., Any],
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    tmp_path: Path,
    push: Callable[..., Any],
    nightclerk: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    password = "s3cret-pass"
    server = private_redis(password=password, tls=_tls_files(tmp_path) if tls else None)
    assert server.url.startswith("rediss://" if tls else "redis://")
    env = {**cluster_env, "redis_url": server.url}
    cluster = make_cluster(env)
    store = cluster.store()
    csv = tickets(60)
    try:
        cluster.start("a")
        push(csv, env)
        wait_for(lambda: store.count() >= 60, 60, "the results")
        status = nightclerk("status", "--wait-s", "2", env=env)
        feed = nightclerk("feed", "info", env=env)
        wrong = push(csv, {**env, "redis_url": server.url.replace(password, "wrong-pass")}, status=2)
        untrusted = (
            push(csv, {**env, "redis_url": server.url.split("&ssl_ca_certs")[0]}, status=2) if tls else None
        )
    finally:
        cluster.stop_all()
        store.close()
    assert status.returncode == 0 and "1 answered" in status.stdout, status.stdout + status.stderr
    assert feed.returncode == 0 and "60" in feed.stdout, feed.stdout + feed.stderr
    assert "refused the credentials" in wrong.stderr
    assert "wrong-pass" not in wrong.stderr and password not in wrong.stderr + status.stdout
    if untrusted is not None:  # the system CAs do not vouch for the test's server certificate
        assert "no Redis answers at rediss://***@127.0.0.1" in untrusted.stderr
    assert password not in cluster.log_text()
