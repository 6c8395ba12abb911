# The two commands of the README. Both create .venv on first use and are idempotent.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
XTSTAMP := $(VENV)/.installed-xtcocotools

.PHONY: demo test test-slow lint install dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e .
	touch $@

# xtcocotools is only the reference scorer the tests compare against. Its wheel is built against
# numpy 1.x and fails to import beside numpy 2, so it is built from source.
$(XTSTAMP): $(STAMP)
	$(PIP) install -c constraints.txt numpy cython setuptools wheel
	$(PIP) install -c constraints.txt --no-binary xtcocotools --no-build-isolation xtcocotools==1.14.3
	touch $@

$(DEVSTAMP): $(STAMP) $(XTSTAMP)
	$(PIP) install -c constraints.txt -e '.[dev,export,tb,bench]'
	touch $@

install: $(STAMP)
dev: $(DEVSTAMP)

demo: $(STAMP)
	$(BIN)/bupose demo --out runs/demo

test: $(DEVSTAMP)
	$(BIN)/ruff check bupose tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-slow: $(DEVSTAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(DEVSTAMP)
	$(BIN)/ruff check bupose tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
