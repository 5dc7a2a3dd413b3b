# cinit developer tasks. `make test` is the command README and CI run.
PYTHON ?= python3
VENV ?= .venv
PY := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,$(PYTHON))

.PHONY: build test test-slow lint bench clean

build:  ## install cinit (editable) with its test and dev tools into .venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test,dev]' --config-settings editable_mode=compat  # a .pth path entry: no import-hook finder on every start
	$(VENV)/bin/python -m compileall -q cinit >/dev/null  # editable installs ship no .pyc: start-up pays for compiling otherwise

test:  ## the whole test suite (PID 1 tests need root for unshare)
	$(PY) -m pytest -q

test-slow:  ## long fuzz runs (>= 100,000 generated inputs)
	$(PY) -m pytest -q -m slow

lint:
	$(PY) -m ruff check cinit tests bench
	$(PY) -m mypy cinit

bench:  ## every benchmark under bench/
	$(PY) bench/validate.py
	$(PY) bench/spawn.py
	$(PY) bench/pid1.py
	$(PY) bench/boot.py
	$(PY) bench/socket_start.py
	$(PY) bench/proxy.py
	$(PY) bench/events.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
