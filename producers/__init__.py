"""Producers: source files -> validated documents -> chunked JSON messages on the Redis queue.

readers     CSV / JSONL records, streamed, undecodable bytes kept as lone surrogates
mapping     which column is the id, the text, the kind, the metadata (options, TOML file or preset)
filecheck   file-level checks before any record is used: empty file, mapped columns missing
validation  record + mapping -> Document, or a Reject whose reason never quotes document text
rejects     the Reject record and the rejects JSONL file
chunking    documents -> ChunkMessages of one kind, bounded in count and in JSON bytes
enqueue     ChunkMessages -> Celery ``send_task`` on the configured queue
push        the orchestration behind ``nightclerk push``
"""
