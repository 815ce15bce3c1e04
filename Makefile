# Two entry points for a fresh clone; both create the virtual environment themselves.
#   make demo   set up, then train -> build -> bench offline on scikit-learn's digits
#   make test   set up, then run the test suite
#   make docs   set up (+ the docs extra), then serve the documentation site locally
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test sweep setup system-tools docs docs-build clean

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

# sshd, qemu-user-static, mmdebstrap, qemu-user + gcc + qemu-plugin.h for the remote-bench, arm64 and
# A72 cost tests (installed when root/sudo)
system-tools:
	EDGEKIT_PYTHON=$(BIN)/python bash scripts/install-system-tools.sh

# CI's command: every test but the registry sweep (one network per kind of block runs here).
test: setup system-tools
	$(BIN)/python -m pytest -q -m "not sweep"

# Every registered network through export, int8 and both runtimes, on this CPU (its ISA level is
# printed at the end and kept in the JUnit file), each int8 also on an emulated AVX2 CPU.
sweep: setup system-tools
	EDGEKIT_SWEEP_EMULATE_AVX2=1 $(BIN)/python -m pytest -q tests/builder/test_registry_pipeline.py \
		--junitxml=sweep-results.xml

# The documentation site (mkdocs.yml, docs/): mkdocs-click imports edgekit.cli, so edgekit is installed too.
DOCS_DEPS := $(VENV)/.docs-installed
$(DOCS_DEPS): $(BIN)/edgekit pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_DEPS)

docs: $(DOCS_DEPS)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Strict: a broken link, a missing anchor or a page left out of the nav fails the build (CI runs it).
docs-build: $(DOCS_DEPS)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf demo-output artifacts .pytest_cache site
