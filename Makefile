# verigrad — two commands do everything on a fresh machine:
#   make demo   set up if needed, then run the demo
#   make test   set up if needed, then run every test (pytest and forge)
SHELL := /bin/bash
PY    := .venv/bin/python
PIP   := .venv/bin/pip
FORGE := node_modules/.bin/forge
VENV_STAMP := .venv/.setup-stamp
NPM_STAMP  := node_modules/.setup-stamp

.PHONY: setup build test test-py test-forge demo lint bench snapshot clean

setup: $(VENV_STAMP) $(NPM_STAMP)

# The CPU build of torch is pinned first so pip never pulls a multi-GB CUDA build.
$(VENV_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --disable-pip-version-check "torch==2.13.0"
	$(PIP) install -q --disable-pip-version-check -e ".[dev]"
	touch $@

# `npm install` (not `npm ci`): it installs exactly the locked versions, and unlike `npm ci` it
# accepts a lock that lists only the platform binaries the registry serves.
$(NPM_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

build: setup
	$(FORGE) build

# pytest runs on 6 workers with work stealing: the daemon scenarios mostly wait for chain time,
# so they overlap well with the CPU-bound tests (on 2 cores: about 7 minutes; 10 on 4 workers,
# over 20 serially; the CPU stays below 1.5 cores busy on average).
PYTEST_ARGS ?= -n 6 --dist worksteal --durations=10

test: setup build
	$(FORGE) test
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-forge: setup
	$(FORGE) test

test-py: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup build
	.venv/bin/verigrad demo

# slither fails the target on a high-impact finding; the medium ones that stay are explained in
# docs/CONTRACTS.md, and the low/informational ones are printed for review.
lint: setup
	.venv/bin/ruff check protocol tests benchmarks
	.venv/bin/mypy protocol
	PATH=$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/slither . --compile-force-framework foundry \
		--exclude-dependencies --filter-paths node_modules --fail-high

snapshot: setup
	$(FORGE) snapshot --snap contracts/.gas-snapshot

bench: setup build
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf out cache .venv node_modules
