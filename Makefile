# gridkit: `make demo` (install + run on the bundled sample), `make check` (a quick smoke test,
# no root needed) and `make test` (install + the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo check test install install-test browser postgis lint sample bench clean

CHECK_OUT ?= out/check
SAMPLE = --communities data/boundaries/sample_communities.geojson \
	--households data/boundaries/sample_buildings.geojson

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "python3 -m venv failed: installing Debian's python3-venv"; \
		apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test,notebooks,postgis,xlsx,dask]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Partition the bundled sample district; writes grids.geojson, assignments.csv, report.json, map.html
demo: install
	$(BIN)/gridkit partition \
		--communities data/boundaries/sample_communities.geojson \
		--households data/boundaries/sample_buildings.geojson \
		--out $(OUT)
	$(BIN)/python -c "from gridkit.staffing import make_roster, write_workers; \
		write_workers(make_roster('$(OUT)', seed=0), '$(OUT)/workers.csv')"
	$(BIN)/gridkit assign --grids $(OUT) --workers $(OUT)/workers.csv --input-crs wgs84 \
		--out $(OUT)/staffing

## Smoke test without root: install into .venv, run every command on the sample, fast tests
check: install-test
	$(BIN)/gridkit --version
	$(BIN)/gridkit partition $(SAMPLE) --out $(CHECK_OUT) --time-limit 1 --lang en
	$(BIN)/gridkit map $(CHECK_OUT) --png $(CHECK_OUT)/overview.png \
		--histogram $(CHECK_OUT)/sizes.png
	$(BIN)/gridkit audit --grids $(CHECK_OUT) \
		--households data/boundaries/sample_buildings.geojson --out $(CHECK_OUT)/audit -q
	$(BIN)/gridkit export $(CHECK_OUT) --to $(CHECK_OUT)/summary.xlsx
	$(BIN)/python -m pytest -q -p no:cacheprovider -o addopts="" -m "not browser and not slow" \
		tests/test_first_hour.py tests/test_cli.py tests/test_maps.py tests/test_packaging.py

## Headless Chromium for the browser tests (Debian package, installed by apt)
browser:
	bash scripts/install_browser.sh

## PostgreSQL + PostGIS (Debian packages) for tests/test_postgis.py; the tests start and stop the server
postgis:
	bash scripts/postgis.sh install

## The whole suite: unit, property, doctest, real-data, browser, PostGIS and notebook tests
test: install-test browser postgis
	$(BIN)/python -c "import gridkit; gridkit.show_versions()"
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check gridkit tests benchmarks

## Regenerate the bundled sample files from gridkit.datasets (seed 0)
sample: install
	$(BIN)/python -c "from gridkit.datasets import write_sample; print(write_sample())"

## Benchmarks (figures printed; spopt and GerryChain come from the optional `bench` extra)
bench: install-test
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/partition_district.py
	$(BIN)/python benchmarks/compare_anchors.py
	$(BIN)/python benchmarks/assign_greedy.py --grids $(OUT)

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
