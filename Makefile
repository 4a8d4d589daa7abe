# The README's commands, for CI and for us. PY is the project venv's interpreter.
PY ?= .venv/bin/python

.PHONY: test lint typecheck bench bench-growth bench-real

test:
	$(PY) -m pytest

# ruff is a developer tool, not a dependency: .venv/bin/pip install ruff
lint:
	@$(PY) -m ruff --version >/dev/null 2>&1 || { echo "ruff is not installed: $(PY) -m pip install ruff"; exit 2; }
	$(PY) -m ruff check .

# mypy reads its settings (files, strictness) from pyproject.toml's [tool.mypy]; CI runs it (.ci/run)
typecheck:
	$(PY) -m mypy

# the bulk lab in its own process and the real engine on it: 1,000 URLs x 6 providers (see BENCHMARKS.md)
bench:
	$(PY) -m bench.run --urls 1000 --providers 6 --concurrency 200 --sample

# growth: cost per measurement and memory at 1k and 10k URLs, and loading a 100k-URL list
bench-growth:
	$(PY) -m bench.run --load-list 100000
	$(PY) -m bench.run --urls 1000
	$(PY) -m bench.run --urls 10000

# against real servers (nginx, unbound, nftables on loopback; root for the nftables part): issue 10's lab,
# the four `limits` variants and the dig + curl baseline (see BENCHMARKS.md)
bench-real:
	for limits in default off qps-only dest-only; do $(PY) -m bench.real --limits $$limits; done
	$(PY) -m bench.real --shell
