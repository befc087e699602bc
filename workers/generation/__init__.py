"""Torch-free text generation over ONNX Runtime: key/value caches, greedy and beam search."""
