# Two commands after cloning:
#   make lab    create .venv, install everything, open JupyterLab on chapters/
#   make test   create .venv, install everything, lint, run unit tests and every notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lab test unit notebooks lint clean slides check-env results

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

# --allow-root only when run as root (containers); LAB_ARGS passes more options, e.g. --no-browser --port 8888
lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/chapters \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lint: setup
	$(BIN)/ruff check utils tests tools chapters solutions

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest tests --ignore=tests/test_notebooks.py $(PYTEST_ARGS)

notebooks: setup
	$(BIN)/python -m pytest tests/test_notebooks.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) results slides .pytest_cache .ruff_cache

# Course tooling (see README): slides for instructors, environment check, full-mode results table.
slides: setup
	$(BIN)/python tools/slides.py $(CHAPTERS)

check-env: setup
	$(BIN)/python -m utils.check_env

results: setup
	$(BIN)/python tools/results.py --run $(NOTEBOOKS)
