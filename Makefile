# Two commands for a newcomer: `make run` and `make test`. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-all lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,slurm,onnx,mlflow]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

run: install
	$(BIN)/python scripts/run_default.py

test: lint
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m ''

lint: install
	$(BIN)/ruff check mri_recon tests scripts
	$(BIN)/ruff format --check mri_recon tests scripts

clean:
	rm -rf $(VENV) outputs .pytest_cache
