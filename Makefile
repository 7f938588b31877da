# uv is installed by the Makefile itself when the machine has none.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PORT ?= 3000

.PHONY: install run test lint format bench soak

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

run: install
	.venv/bin/creditgate serve --port $(PORT)

test: install
	.venv/bin/pytest

lint: install
	.venv/bin/ruff check src tests alembic bench
	.venv/bin/ruff format --check src tests alembic bench
	.venv/bin/mypy
	.venv/bin/mypy bench
	.venv/bin/lint-imports

format: install
	.venv/bin/ruff check --fix src tests alembic bench
	.venv/bin/ruff format src tests alembic bench

# creditgate against a direct call of the same fake upstream (about 3 minutes), into docs/benchmarks.md.
# Uses DATABASE_URL's (else TEST_DATABASE_URL's) server for a throwaway database, else the embedded PostgreSQL.
bench: install
	.venv/bin/python -m bench.run

# 256 streams for 5 minutes: memory per stream and its growth, recorded in the soak section of docs/benchmarks.md.
soak: install
	.venv/bin/python -m bench.run --soak 300
