# Two commands for a fresh machine with Python 3.11+: `make serve` and `make test`.
# Every install takes its exact versions from constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet -c constraints.txt
# The library alone, as a resource server installs it: a fresh venv for every run.
LIB_VENV := .venv-library

.PHONY: serve test test-library test-library-floor lint install install-test interop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp files make a second `make` skip pip when nothing it reads has changed.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[server]'
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[server,test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/jwtauth serve

# Node's jose and jsonwebtoken for tests/test_interop_node.py, exactly as the lock file
# says. Without npm the tests skip (and fail under CI=true) naming what to install.
interop:
	@if command -v npm >/dev/null; then \
	  if [ ! -f interop/node_modules/.package-lock.json ] || \
	     [ interop/package-lock.json -nt interop/node_modules/.package-lock.json ]; then \
	    echo "interop/node_modules: npm ci"; \
	    (cd interop && npm ci --no-audit --no-fund --silent); \
	  fi; \
	else \
	  echo "npm not found: the Node interop tests will skip (install Node.js 20 with npm)"; \
	fi

# Lint first: seconds, and a type or lint error is cheaper to read than a failed test.
lint: install-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# The base package alone (`pip install .`, no extra) and the test tools, in a fresh venv:
# nothing of the server may get in, and the library's tests must pass there.
test-library:
	rm -rf $(LIB_VENV)
	$(PYTHON) -m venv $(LIB_VENV)
	$(LIB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LIB_VENV)/bin/python -m pip install --quiet -c constraints.txt . \
	    pytest pytest-asyncio pytest-timeout hypothesis
	$(LIB_VENV)/bin/python .ci/base_install.py
	JWTAUTH_TEST_BASE_ONLY=1 $(LIB_VENV)/bin/python -m pytest \
	    --confcutdir=tests/library -p no:cacheprovider tests/library

# The same tests on the lowest versions pyproject.toml admits for the base and the
# [fastapi] extra: the ranges must be true. Not part of `make test` (it downloads old
# releases); run it when a range or an API the library uses changes.
FLOORS := joserfc==1.0.0 cryptography==42.0.0 orjson==3.9.0 pybase64==1.3.0 httpx==0.27.0 \
    fastapi==0.115.0 starlette==0.37.2
test-library-floor:
	rm -rf $(LIB_VENV)-floor
	$(PYTHON) -m venv $(LIB_VENV)-floor
	$(LIB_VENV)-floor/bin/python -m pip install --quiet . $(FLOORS) \
	    pytest pytest-asyncio pytest-timeout hypothesis
	$(LIB_VENV)-floor/bin/python -m pytest --confcutdir=tests/library -p no:cacheprovider \
	    tests/library

test: lint interop test-library
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LIB_VENV) $(LIB_VENV)-floor build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
