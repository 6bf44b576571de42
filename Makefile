# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# The CPU build of torch: pinned so pip never pulls the multi-GB CUDA build in through
# sentence-transformers. TORCH_INDEX may point at the CPU wheel index on machines without a local wheel.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/frictionlog demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/themes.py
	$(BIN)/python bench/themes_scale.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/redaction.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) frictionlog.db* frictionlog-demo.db* digest.md digest-chart.png digest.html .pytest_cache .ruff_cache .hypothesis
