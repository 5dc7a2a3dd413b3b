# cinit developer tasks. `make test` is the command README and CI run.
PYTHON ?= python3
VENV ?= .venv
PY := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,$(PYTHON))

.PHONY: build venv standalone install-standalone dist test test-standalone test-slow lint bench clean

build: venv standalone  ## .venv (editable cinit + tools) and the standalone bin/cinit

venv:  ## install cinit (editable) with its test, dev and build tools into .venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test,dev,build]' --config-settings editable_mode=compat  # a .pth path entry: no import-hook finder on every start
	$(VENV)/bin/python -m compileall -q cinit >/dev/null  # editable installs ship no .pyc: start-up pays for compiling otherwise

# ~20 s here (~60 s on a cold PyInstaller cache): cheap enough to be part of `make build`.
standalone:  ## bin/cinit: self-contained cinit, no Python needed on the target (packaging/)
	@$(VENV)/bin/python -c 'import PyInstaller' 2>/dev/null || $(VENV)/bin/pip install -q -e '.[build]' --config-settings editable_mode=compat
	packaging/build-standalone.sh $(VENV)/bin/python bin

# Install bin/cinit into a root filesystem: DESTDIR=/path/to/rootfs (the bundle in /opt/cinit,
# the command as /usr/local/bin/cinit).
DESTDIR ?=
install-standalone:
	@test -x bin/cinit || { echo "bin/cinit missing: run make standalone"; exit 1; }
	rm -rf $(DESTDIR)/opt/cinit
	mkdir -p $(DESTDIR)/opt $(DESTDIR)/usr/local/bin
	cp -a bin/cinit.dist $(DESTDIR)/opt/cinit
	ln -sfn /opt/cinit/cinit $(DESTDIR)/usr/local/bin/cinit

# Release files in dist/: the standalone tarball (opt/cinit + usr/local/bin links), the
# wheel and sdist, the systemctl/journalctl wheel, SHA256SUMS (packaging/make-dist.sh).
dist: standalone  ## dist/cinit-VERSION-linux-ARCH.tar.gz, wheels, sdist, SHA256SUMS
	@$(VENV)/bin/python -c 'import build' 2>/dev/null || $(VENV)/bin/pip install -q -e '.[build]' --config-settings editable_mode=compat
	packaging/make-dist.sh $(VENV)/bin/python bin/cinit.dist dist

# Which modules cinit processes import over the PID 1, CLI, e2e and tool tests, held against
# bin/cinit.dist (packaging/import-trace/): how packaging/cinit.spec's LEFT_OUT was found.
.PHONY: trace-imports
trace-imports: standalone  ## trace the imports of every cinit process over the tests; report against the standalone build
	rm -rf build/import-trace && mkdir -p build/import-trace
	-IMPORT_TRACE_DIR=$(CURDIR)/build/import-trace PYTHONPATH=$(CURDIR)/packaging/import-trace \
	  $(PY) -m pytest -q -p no:cacheprovider tests/pid1 tests/cli tests/e2e tests/tools tests/sockets tests/test_validate_cli.py
	$(PY) packaging/import-trace/report.py build/import-trace bin/cinit.dist

test:  ## the whole test suite (PID 1 tests need root for unshare)
	$(PY) -m pytest -q

test-standalone: standalone  ## the whole suite against a freshly built bin/cinit
	CINIT_BIN=$(CURDIR)/bin/cinit $(PY) -m pytest -q

test-slow:  ## long fuzz runs (>= 100,000 generated inputs)
	$(PY) -m pytest -q -m slow

lint:
	$(PY) -m ruff check cinit tests bench
	$(PY) -m mypy cinit

bench: standalone  ## every benchmark under bench/, side by side with its peers -> docs/benchmarks.md (~7 min; DSR=path/to/systemctl3.py adds docker-systemctl-replacement, ~3 min more)
	$(PY) -m compileall -q cinit >/dev/null  # PYTHONDONTWRITEBYTECODE=1 would leave edited modules recompiled on every boot
	DSR=$(DSR) $(PY) bench/report.py

.PHONY: bench-quick
bench-quick: standalone  ## the same with fewer runs and smaller loads (~2 min)
	$(PY) -m compileall -q cinit >/dev/null
	DSR=$(DSR) $(PY) bench/report.py --quick

clean:
	rm -rf build dist bin *.egg-info .pytest_cache .mypy_cache .ruff_cache

.PHONY: e2e
# The release tarball (packaging/make-tarball.sh) is unpacked into each image: what is tested
# is what is shipped.
e2e:  ## boot real Debian images (no Python; the second with 11 packaged services, `--systemd`) with bin/cinit as PID 1 (as root; first run downloads Debian)
	@test -x $(VENV)/bin/python && test -x bin/cinit || $(MAKE) build
	tarball=$$(packaging/make-tarball.sh bin/cinit.dist build/e2e) \
	  && CINIT_E2E_ROOTFS=1 CINIT_E2E_TARBALL=$$tarball $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/rootfs
