# PMCT: `make demo` runs the offline demo, `make test` lints, type-checks and runs the whole
# test suite (ruff and mypy first: any finding fails it).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-serve web test bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) demo.py

# the demo, then the simulator, daemons and dashboard stay up until Ctrl-C
demo-serve: $(STAMP)
	$(PY) demo.py --serve

web: $(STAMP)
	$(PY) web.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	bash scripts/ensure-postgres.sh
	$(PY) -m pytest

bench: $(STAMP)
	bash scripts/ensure-postgres.sh
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis demo-out test-artifacts
