# ExpertConnect: `make run` and `make test` each do every set-up step on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test migrate postgres clean

install: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# The server binaries, for the private cluster used when database.dsn is empty.
postgres:
	@bash scripts/ensure-postgres.sh

run: install postgres
	$(PY) server.py

migrate: install postgres
	$(PY) server.py migrate

test: install postgres
	$(PY) -m pytest

clean:
	rm -rf $(VENV)
