# Two entry points for a fresh clone; both create the virtual environment themselves.
#   make demo   set up, then train -> build -> bench offline on scikit-learn's digits
#   make test   set up, then run the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

$(BIN)/edgekit: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch/torchvision first and alone: pip then takes the pinned pair from the local wheel store
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/edgekit

setup: $(BIN)/edgekit

demo: setup
	$(BIN)/edgekit demo --workdir demo-output

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo-output artifacts .pytest_cache
