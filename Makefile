# Two commands after cloning:
#   make lab    create .venv, install everything, open JupyterLab on chapters/
#   make test   create .venv, install everything, lint, run unit tests and every notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lab test unit notebooks lint clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/chapters $(LAB_ARGS)

lint: setup
	$(BIN)/ruff check utils tests chapters solutions

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest tests --ignore=tests/test_notebooks.py $(PYTEST_ARGS)

notebooks: setup
	$(BIN)/python -m pytest tests/test_notebooks.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) results slides .pytest_cache .ruff_cache
