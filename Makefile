# Two commands do all the set-up on a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HERON := $(BIN)/heron
PYTEST_ARGS ?=
# Real clients the interoperability tests drive: coturn's turnutils_*, sipp, sipsak (the SIP
# health check), Node for @xmpp/client, and Chromium for the browser tests (driven by
# Playwright, never a downloaded browser). Prosody and ejabberd are the federation peers of the
# s2s interop tests; lua-unbound is the resolver Prosody uses when Debian's Recommends are in.
# sslh is the protocol demultiplexer bench/mux measures heron's port-443 mux against;
# tinyproxy is the hotel's HTTP proxy in the hotel test (tests/support/hotel.py).
# baresip is the plain-RTP desk phone of the media tests, sox makes and reads their tone WAVs
# (tests/support/tone.py); go-sendxmpp uploads a file by XEP-0363 in the upload tests; bench/media bridges the same calls through rtpengine steered by
# Kamailio (its rtpengine module is in the kamailio package).
# kamailio (kamdbctl, kamctl) and its SQLite, MySQL and PostgreSQL modules make the databases
# `heron import kamailio` reads in its tests; lua-dbi-sqlite3, -mysql and -postgresql let Prosody
# keep its data in SQL (storage = "sql") for `heron import prosody --db`.
# systemd gives systemd-analyze, which checks src/heron/heron.service.
# pebble (with pebble-challtestsrv) is the ACME server `[tls] acme` is tested against.
# gcc and python3-dev build what `install` compiles (setup.py): the mypyc cores and
# heron.turn._mmsg, the recvmmsg/sendmmsg extension; `make run` needs them too.
BUILD_PACKAGES := gcc python3-dev
DEB_PACKAGES := coturn sip-tester sipsak socat nodejs chromium prosody lua-unbound ejabberd sslh \
	kamailio kamailio-sqlite-modules kamailio-mysql-modules kamailio-postgres-modules \
	lua-dbi-sqlite3 lua-dbi-mysql lua-dbi-postgresql \
	tinyproxy baresip sox rtpengine-daemon go-sendxmpp systemd pebble
# The web phone's SIP stack: JsSIP from npm, bundled for the browser by esbuild (gitignored).
ASSET_BUILD := src/heron/web/assets/build
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The sans-IO cores mypyc compiles: src/heron/compiled.py lists them (stdlib only, so the
# system Python reads it before the venv exists).
CORE_SOURCES := $(shell $(PYTHON) -c \
	'import runpy; print(*runpy.run_path("src/heron/compiled.py")["sources"]())')

.PHONY: install test-deps build-deps deb-deps assets run test lint unit clean

install: build-deps $(VENV)/.installed $(VENV)/.compiled

# HERON_PURE_PYTHON=1: pip installs heron editable without compiling; the next rule does that.
$(VENV)/.installed: pyproject.toml setup.py src/heron/turn/_mmsg.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	HERON_PURE_PYTHON=1 $(BIN)/pip install --quiet -e .
	touch $@

# mypyc compiles the cores into extensions beside their .py files (setup.py), again whenever
# one changes; until then heron runs the .py files (src/heron/compiled.py says why). It starts
# clean: an extension left from a module since dropped from the list would shadow its .py, and
# one left in build/ would go into a wheel. A failed build (no C compiler) leaves
# heron pure Python; tests/unit/test_compiled.py fails on CI then.
$(VENV)/.compiled: setup.py src/heron/turn/_mmsg.c $(CORE_SOURCES) | $(VENV)/.installed
	$(BIN)/pip install --quiet 'setuptools>=77' 'mypy>=1.10'
	rm -rf build
	find src -name '*.so' -delete
	$(BIN)/python setup.py --quiet build_ext --inplace || { find src -name '*.so' -delete; \
		echo "mypyc build failed: heron runs its pure-Python cores"; }
	touch $@

test-deps: deb-deps install $(VENV)/.test-installed node_modules/.installed assets

# Installs only what is missing; RUNLEVEL=1 keeps Debian from starting the packaged
# daemons (coturn, prosody, ejabberd, sslh, tinyproxy, kamailio, rtpengine), which tests and benchmarks start
# themselves on their own ports. On a systemd machine the postinsts start units regardless:
# stop and disable those.
define install_missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
			apt-get install -y -qq --no-install-recommends $$missing && \
		if [ -d /run/systemd/system ]; then \
			for unit in coturn prosody ejabberd sslh tinyproxy kamailio rtpengine-daemon rtpengine; do \
				$(SUDO) systemctl disable --now $$unit 2>/dev/null || true; \
			done; \
		fi; \
	fi
endef

build-deps:
	$(call install_missing,$(BUILD_PACKAGES))

deb-deps: build-deps
	$(call install_missing,$(DEB_PACKAGES))

$(VENV)/.test-installed: pyproject.toml
	HERON_PURE_PYTHON=1 $(BIN)/pip install --quiet -e '.[test]'
	touch $@

# npm clients (package.json); package-lock.json pins them.
node_modules/.installed: package.json
	command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	npm install --no-audit --no-fund --silent
	touch $@

assets: $(ASSET_BUILD)/jssip.min.js

$(ASSET_BUILD)/jssip.min.js: node_modules/.installed
	node_modules/.bin/esbuild node_modules/jssip/lib/JsSIP.js --bundle --format=iife \
		--global-name=JsSIP --minify --target=es2020 --log-level=warning --outfile=$@

run: install assets
	$(HERON) cert --if-missing
	$(HERON) serve

lint: test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src bench

# loadgroup: a module sharing a module-scoped server runs on one worker (tests/conftest.py).
unit: test-deps
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint unit

clean:
	rm -rf $(VENV) var node_modules $(ASSET_BUILD) .mypy_cache .pytest_cache .ruff_cache build
	find src -name '*.so' -delete
