# Two entry points, each setting up its own virtualenv from scratch:
#   make demo   — ingest LFW View-1 faces with the offline dlib encoder into embedded Qdrant, query each, score rank 1
#   make test   — lint, type-check and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LFW ?= $(or $(LOOKALIKE_LFW),../shared/datasets/lfw)
DEMO_LIMIT ?= 1500

.PHONY: demo test lint venv clean

$(BIN)/lookalike: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[face,train,serve,maps,mnist,ray,dev]"
	touch $@

venv: $(BIN)/lookalike

demo: venv
	$(BIN)/lookalike eval retrieval --dataset $(LFW)/lfw-deepfunneled --encoder dlib --no-face center \
		--collection lfw-dlib --limit $(DEMO_LIMIT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy pipeline finetune commands cli.py

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .lookalike
