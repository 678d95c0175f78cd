# The two commands: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
# CPU torch for machines without one; GPU users install their own CUDA torch first.
TORCH_SPEC ?= torch==2.13.0
DISTRIBUTION ?= local
PORT ?=
PYTEST_ARGS ?=

.PHONY: run test install tiny-model bench conformance clean

$(VENV)/.installed: pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	@$(VPY) -c "import torch" 2>/dev/null || $(VPY) -m pip install -q "$(TORCH_SPEC)"
	$(VPY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/vistack serve --distribution $(DISTRIBUTION) $(if $(PORT),--port $(PORT),)

test: $(VENV)/.installed
	$(VPY) -m pytest $(PYTEST_ARGS)

tiny-model: $(VENV)/.installed
	$(VPY) -m vistack.testing tiny-mllama $(or $(DIR),.tiny-mllama)

bench: $(VENV)/.installed
	$(VPY) benchmarks/server_overhead.py

# Llama Stack v0.7.1's own integration tests against a fresh vistack (tiny model); see benchmarks/README.md.
# The harness lives in $${TMPDIR:-/tmp}/ls-peer; a first run builds it from LS_MIRROR (a llama-stack git dir).
conformance: $(VENV)/.installed
	$(VPY) benchmarks/conformance.py --json $(or $(CONFORMANCE_JSON),/tmp/vistack-conformance.json) $(CONFORMANCE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
