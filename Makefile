# Two commands on a fresh machine: `make demo` and `make test`. Each sets up what it needs.
PY := .venv/bin/python
DEMO_ARGS ?=

.PHONY: demo test check lint typecheck bench venv system-deps clean

venv:
	@scripts/venv.sh

system-deps:
	@scripts/system-deps.sh

demo: venv
	$(PY) -m edge_agent demo $(DEMO_ARGS)

test: venv system-deps
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy edge_agent drivers firmware_profiles

check: lint typecheck test

bench: venv
	$(PY) bench/ingest.py
	$(PY) bench/footprint.py

clean:
	rm -rf .venv build *.egg-info demo-venue
