# Two commands after cloning:
#   make lab    create .venv, install everything, open JupyterLab on chapters/
#   make test   create .venv, install everything, lint, run unit tests and every notebook in quick mode
# `make test-full` (or ADL_QUICK=0 make test) runs the notebooks in the book's configuration: hours on a CPU.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Tests run the notebooks in quick mode unless ADL_QUICK is set (in the environment or on the command line).
TEST_QUICK := $(if $(ADL_QUICK),$(ADL_QUICK),1)
TEST_ENV   := ADL_QUICK=$(TEST_QUICK) ADL_PLAIN_PROGRESS=1
FULL_NOTEBOOK_TIMEOUT ?= 14400

.PHONY: setup lab test test-full unit notebooks lint clean slides check-env preflight results lock present

# The exact versions of requirements.lock (compiled from requirements.txt; see `make lock`).
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock -e .
	touch $(STAMP)

setup: $(STAMP)

# --allow-root only when run as root (containers); LAB_ARGS passes more options, e.g. --no-browser --port 8888
lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/chapters \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lint: setup
	$(BIN)/ruff check utils tests tools chapters solutions

# Before any notebook runs, tests/conftest.py checks that the data can be had (see `make preflight`).
test: lint
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-full:
	$(MAKE) test ADL_QUICK=0 ADL_NOTEBOOK_TIMEOUT=$(FULL_NOTEBOOK_TIMEOUT)

unit: setup
	$(TEST_ENV) $(BIN)/python -m pytest tests --ignore=tests/test_notebooks.py --ignore=tests/test_activities.py $(PYTEST_ARGS)

notebooks: setup
	$(TEST_ENV) $(BIN)/python -m pytest tests/test_notebooks.py tests/test_activities.py $(PYTEST_ARGS)

preflight: setup
	$(BIN)/python -m utils.check_env --preflight

clean:
	rm -rf $(VENV) results outputs slides .pytest_cache .ruff_cache

# Course tooling (see README): slides for instructors, environment check, full-mode results table.
slides: setup
	$(BIN)/python tools/slides.py $(CHAPTERS)

# Present one notebook live with RISE: make present NOTEBOOK=chapters/ch04_cnn/exercise08_conv_output_size.ipynb
present: setup
	@test -n "$(NOTEBOOK)" || { echo "usage: make present NOTEBOOK=chapters/<chapter>/<notebook>.ipynb"; exit 2; }
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/rise/$(NOTEBOOK) \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

check-env: setup
	$(BIN)/python -m utils.check_env

results: setup
	$(BIN)/python tools/results.py --run $(NOTEBOOKS)

# Refresh requirements.lock after changing requirements.txt or lock-pins.txt (needs the network).
lock: setup
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile requirements.txt -c lock-pins.txt --python-version 3.11 --universal --no-header \
		--annotation-style line -o requirements.lock.new
	{ sed -n '/^#/p;/^[^#]/q' requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp
	rm requirements.lock.new && mv requirements.lock.tmp requirements.lock
