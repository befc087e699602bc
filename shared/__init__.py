"""The contract between producers, workers and exporters: documents, messages, results, packs, settings.

Nothing here imports ``nightclerk.producers``, ``nightclerk.workers`` or ``nightclerk.exporters``.
"""
