"""Celery tasks and the ONNX Runtime inference runtime. Imports ``nightclerk.shared`` only; never torch."""
