# Two commands after cloning:
#   make lab    create .venv, install everything, open JupyterLab on chapters/
#   make test   create .venv, install everything, lint, run unit tests and every notebook in quick mode
# Both call tools/course.py, which the README's make-free commands (Windows PowerShell, any shell) call
# too, so they do exactly the same: it first checks the Python (PYTHON=python3.12 picks another).
# `make test-full` (or ADL_QUICK=0 make test) runs the notebooks in the book's configuration: hours on a CPU.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
COURSE := $(PYTHON) tools/course.py
FULL_NOTEBOOK_TIMEOUT ?= 14400

.PHONY: setup lab test test-full unit notebooks lint clean slides check-env check-platforms preflight results lock present

# Checks the interpreter, then makes .venv and installs requirements.lock and utils (skipped when up to date).
setup:
	@$(COURSE) setup --venv $(VENV)

# LAB_ARGS passes more options to JupyterLab, e.g. --no-browser --port 8888
lab:
	$(COURSE) lab --venv $(VENV) -- $(LAB_ARGS)

lint:
	$(COURSE) lint --venv $(VENV)

# Quick mode unless ADL_QUICK is set. Before any notebook runs, tests/conftest.py checks that the data
# can be had (see `make preflight`). PYTEST_ARGS passes more options to pytest.
test:
	$(COURSE) test --venv $(VENV) -- $(PYTEST_ARGS)

test-full:
	$(MAKE) test ADL_QUICK=0 ADL_NOTEBOOK_TIMEOUT=$(FULL_NOTEBOOK_TIMEOUT)

unit:
	$(COURSE) pytest --venv $(VENV) -- tests --ignore=tests/test_notebooks.py --ignore=tests/test_activities.py $(PYTEST_ARGS)

notebooks:
	$(COURSE) pytest --venv $(VENV) -- tests/test_notebooks.py tests/test_activities.py $(PYTEST_ARGS)

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

# What to paste into a bug report (.github/ISSUE_TEMPLATE/bug_report.yml).
check-env: setup
	$(BIN)/python -m utils.check_env

# Proves that requirements.lock installs from wheels on every supported Python and platform (needs the
# package registry; says so and skips without it).
check-platforms: setup
	$(BIN)/python tools/check_platforms.py

results: setup
	$(BIN)/python tools/results.py --run $(NOTEBOOKS)

# Refresh requirements.lock after changing requirements.txt or lock-pins.txt (needs the network), for the
# lowest supported Python with markers for the others; then `make check-platforms`.
# The current pins are kept where they still fit (uv prefers the versions of its output file).
lock: setup
	sed '/^#/d' requirements.lock > requirements.lock.new
	$(BIN)/python -m uv pip compile requirements.txt -c lock-pins.txt --python-version \
		$$($(BIN)/python -c "import sys; sys.path.insert(0, 'tools'); import course; print(course.supported_versions()[0])") \
		--universal --no-header --annotation-style line --no-python-downloads -o requirements.lock.new
	{ sed -n '/^#/p;/^[^#]/q' requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp
	rm requirements.lock.new && mv requirements.lock.tmp requirements.lock
