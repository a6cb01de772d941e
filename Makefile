# Two commands on a fresh machine: `make demo` and `make test`. Each sets up what it needs.
PY := .venv/bin/python
DEMO_ARGS ?=

.PHONY: demo test check lint typecheck imports bench venv system-deps clean

# The venv builds C extensions (dbus-python needs libdbus-1-dev), so the Debian
# packages always come first: every target that needs the venv gets them through it.
venv: system-deps
	@scripts/venv.sh

system-deps:
	@scripts/system-deps.sh

demo: venv
	$(PY) -m beerflow_edge demo $(DEMO_ARGS)

test: venv
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy beerflow_edge edge_agent drivers firmware_profiles rules cloud_sync cloud_api tui simulators integrations deploy/bluegreen.py

# The packages' layering (the runtime imports no area, ...): LAYERS in scripts/import_graph.py.
imports: venv
	$(PY) scripts/import_graph.py --check

check: lint typecheck imports test

bench: venv
	$(PY) bench/ingest.py
	$(PY) bench/footprint.py
	$(PY) bench/footprint.py --mixed
	$(PY) bench/modbus.py
	$(PY) bench/mqtt.py
	$(PY) bench/mqtt_kill.py
	$(PY) bench/fuzz.py
	$(PY) bench/rules.py
	$(PY) bench/haccp.py
	$(PY) bench/sync.py
	$(PY) bench/api_fuzz.py

clean:
	rm -rf .venv build *.egg-info demo-venue
