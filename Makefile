# The two commands a newcomer types: `make run` and `make test`.
# Both create .venv when missing and install the project into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-docker run-network test lint typecheck pytest bench engines clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python examples/hello_web.py

# The same with the web service in a docker container (needs a docker engine; the image
# is busybox:stable unless DMS_DEMO_IMAGE names another one with busybox's httpd).
run-docker: $(STAMP)
	$(BIN)/python examples/hello_web.py --docker

# hello-web over the ensemble network: each allocation in a namespace with a 10/8
# address, the client calling http://web.internal:8765/ on another provider (needs root,
# /dev/net/tun and iproute2).
run-network: $(STAMP)
	$(BIN)/python examples/hello_web.py --network

# Real engines for the executor tests (docker when root on Debian); skipped tests name what is missing.
engines:
	@if [ -x .ci/engines ]; then .ci/engines; fi

test: $(STAMP) engines lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check ucan dms dms_console tests examples bench conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy --strict ucan
	$(BIN)/mypy --strict dms dms_console

# Byte-compiled first: the suite starts hundreds of `dms` subprocesses, and where
# PYTHONDONTWRITEBYTECODE is set each of them would compile the project again.
pytest: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 dms dms_console ucan >/dev/null
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@for b in bench/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
