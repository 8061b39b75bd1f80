# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_DB ?= demo.duckdb
DEMO_QUESTION ?= Which newspaper was founded by the man who, in 1902, was mayor of the town where the designer of the Veloria Bridge was born?

.PHONY: demo test install clean

# torch first, pinned to the CPU build that lies on disk: a bare `torch` requirement would pull a
# multi-GB CUDA build. Everything else comes from pyproject.toml.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,airflow]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/hippograph index examples/demo/corpus.jsonl --db $(DEMO_DB)
	$(BIN)/hippograph query "$(DEMO_QUESTION)" --db $(DEMO_DB) --mode hipporag --top-k 5
	$(BIN)/hippograph query "$(DEMO_QUESTION)" --db $(DEMO_DB) --mode memorag --top-k 5

test: $(BIN)/.installed
	$(BIN)/python -m pytest tests -q

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB).wal *.egg-info build
