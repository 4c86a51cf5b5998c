# Two entry points: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STORE  ?= data
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: venv serve test lint bench clean chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

serve: venv
	@test -d $(STORE) || $(VENV)/bin/cas-dvid init $(STORE)
	$(VENV)/bin/cas-dvid serve $(STORE) --host $(HOST) --port $(PORT)

# lint: ruff (the rules in pyproject.toml) and mypy --strict on the package; test runs it first.
lint: venv
	$(VENV)/bin/ruff check cas_dvid
	$(VENV)/bin/ruff format --check cas_dvid
	$(VENV)/bin/mypy --strict cas_dvid

# The browser tests (tests/test_console_browser.py) drive Debian's chromium: installed
# through apt-get when it is missing (as root, or with sudo).
chromium:
	@test -x /usr/bin/chromium || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

test: lint chromium
	$(PY) -m pytest $(PYTEST_ARGS)
	CAS_DVID_TREE_FAST_PATHS=0 $(PY) -m pytest -q -p no:randomly tests/test_trees.py tests/test_trees_big.py tests/test_trees_keys.py tests/test_trees_node.py tests/test_trees_pin.py

bench: venv
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	-$(PY) tools/bench_table.py
	-$(PY) tools/bench_objects.py
	-$(PY) tools/bench_trees.py
	-$(PY) tools/bench_keyvalue.py
	-$(PY) tools/bench_volume.py
	-$(PY) tools/bench_sync.py
	-$(PY) tools/bench_dag.py
	-$(PY) tools/bench_labelcodec.py
	-$(PY) tools/bench_labelmap.py
	-$(PY) tools/bench_labelmap_bodies.py
	-$(PY) tools/bench_mutations.py
	-$(PY) tools/bench_roi.py
	-$(PY) tools/bench_tiles.py
	-$(PY) tools/bench_console.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
