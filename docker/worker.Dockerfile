# A nightclerk worker (and, with another command, the intake or the write-back): ONNX Runtime with CUDA and
# cuDNN from PyPI wheels (onnxruntime-gpu 1.31 is built for CUDA 13); runs on the CPU without a GPU.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY workers workers
COPY producers producers
COPY exporters exporters
COPY cli cli
COPY downstream downstream
RUN pip install --no-cache-dir '.[worker]' 'onnxruntime-gpu[cuda,cudnn]'
ENV NIGHTCLERK_LOG_JSON=true
ENTRYPOINT ["nightclerk", "worker"]
