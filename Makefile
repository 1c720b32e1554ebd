# Two commands set everything up on a fresh clone: `make demo` and `make test`.
# Both create the virtual environment on first use (pinned versions from pyproject.toml).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mediatok-installed

.PHONY: demo test venv bench clean

venv: $(STAMP)

# --no-cache-dir: PyPI's torch brings ~4 GB of CUDA wheels; keeping them in pip's cache as well as in the venv
# (7.6 GB) needs ~4 GB more disk, and a CI machine once ran out of space installing them.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --progress-bar off --no-cache-dir -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	workdir=$$(mktemp -d) && $(PY) -m mediatok.demo --workdir $$workdir

test: demo
	$(PY) -m pytest -q -rs tests

bench: $(STAMP)
	$(PY) -m pip install --quiet --progress-bar off --no-cache-dir -e ".[bench]"

clean:
	rm -rf $(VENV) build *.egg-info
