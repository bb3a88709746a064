# Every target creates .venv on first use: torch 2.13.0 (CPU) first, then spectok with its extras.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spectok-installed

.PHONY: setup demo test test-slow bench lint wheel-check models clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e ".[train,eval,tokens,dev]"
	touch $(STAMP)

# the fine-tuning part reads the Free Spoken Digit Dataset from ../shared/data (or FSDD=DIR)
FSDD ?= ../shared/data/free-spoken-digit-dataset
demo: $(STAMP)
	$(VENV)/bin/spectok demo --out runs/demo $(if $(wildcard $(FSDD)),--fsdd $(FSDD))

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# build the wheel from the committed tree, install it into a fresh venv, use it from another folder
wheel-check: $(STAMP)
	bash .ci/wheel-check

# reproduce the released models (src/spectok/models/): data, training, export, eval, model cards
models: $(STAMP)
	$(PY) scripts/release_models.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs build *.egg-info
