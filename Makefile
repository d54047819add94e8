# Lexique: `make run` starts the product, `make test` runs the suite. See README.md.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
export RAGAS_DO_NOT_TRACK := true

.PHONY: run test install install-dev bench bench-quick migrate demo web worker beat

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## The product: web UI + Celery worker + Celery beat on the embedded defaults, with the demo glossary.
## A local demo: DEBUG on (with the development SECRET_KEY) unless DEBUG is set; production sets SECRET_KEY.
run: export DEBUG ?= true
run: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py setup_demo
	$(PY) manage.py build_index --if-missing
	bash scripts/run.sh

## The test suite (pytest, real database, real broker and worker where a feature crosses them).
test: install-dev
	bash scripts/test.sh

bench: install-dev
	$(PY) -m bench

bench-quick: install-dev
	$(PY) -m bench --quick
