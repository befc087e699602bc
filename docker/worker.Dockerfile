# A nightclerk worker: ONNX Runtime with CUDA 12 + cuDNN 9 from PyPI wheels; runs on the CPU without a GPU.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY workers workers
COPY producers producers
COPY exporters exporters
COPY cli cli
RUN pip install --no-cache-dir '.[worker]' 'onnxruntime-gpu[cuda,cudnn]'
ENV NIGHTCLERK_LOG_JSON=true
ENTRYPOINT ["nightclerk", "worker"]
