"""Generation packs: export decoder-only and encoder-decoder models with their key/value caches to ONNX."""
