# Two entry points for a fresh clone; both create the virtual environment themselves.
#   make demo   set up, then train -> build -> bench offline on scikit-learn's digits
#   make test   set up, then run the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup system-tools clean

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

# sshd, qemu-user-static and mmdebstrap for the remote-bench and arm64 tests (installed when root/sudo)
system-tools:
	bash scripts/install-system-tools.sh

test: setup system-tools
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo-output artifacts .pytest_cache
