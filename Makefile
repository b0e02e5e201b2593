# Two commands on a fresh machine with Python 3.11, pip and make:
#   make chat   - a chat answer routed by forge (the embedded local model: no server, no key)
#   make test   - the whole test suite
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PROMPT ?= Why is the sky blue? Answer in one sentence.
MAX_TOKENS ?= 64

.PHONY: install chat test test-unit lint bench

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv

install: $(UV)
	$(UV) sync --locked --all-packages --python $(PYTHON)

chat: install
	$(UV) run --locked forge chat "$(PROMPT)" --max-tokens $(MAX_TOKENS)

# The whole suite, the benchmark harness's smoke test included (it needs the peers), in
# TEST_WORKERS test processes side by side (pytest-xdist): 2, one a core of the 2-core budget.
# Each process starts the servers and loads the model its own tests need. --dist loadgroup
# hands out tests one by one, except that a module in conftest.py's ONE_PROCESS_MODULES (its
# tests share one costly run) stays whole in one process. A plain `pytest` runs in one process.
TEST_WORKERS ?= 2
test: $(UV)
	$(UV) sync --locked --all-packages --group bench --python $(PYTHON)
	$(UV) run --locked --group bench pytest -n $(TEST_WORKERS) --dist loadgroup

lint: install
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked mypy
	$(UV) run --locked lint-imports

# The fast tier: no server, no model, no optional extra (conftest.py blocks the extras' modules);
# routing and the wrappers run on forge_core.testing's scripted backend and loopback fault
# servers. Under 90 s on 2 cores.
test-unit: install
	FORGE_TEST_WITHOUT_EXTRAS=1 $(UV) run --locked pytest -m "not local_server and not local_model and not redis_server" packages

# Benchmarks vs peers (dev-only `bench` group); rewrites the README's results section.
bench: $(UV)
	$(UV) sync --locked --all-packages --group bench --python $(PYTHON)
	$(UV) run --locked python -m benchmarks
