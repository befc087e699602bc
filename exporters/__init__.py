"""Model building: labelled data + checkpoint -> ONNX (fused, quantized) -> verified model pack.

Heavy dependencies (torch, transformers, onnx) are imported by the modules that need them, never here, so
``nightclerk.exporters.datasets`` and ``nightclerk.exporters.errors`` stay cheap to import from the CLI.
"""
