# Parcours — the two commands a newcomer needs are `make run` and `make test`.
# Both create .venv and install what they need; nothing else must be installed but python3.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# What makemessages does not search for strings to translate (tests/web/test_translations.py
# extracts with the same list).
MESSAGES_IGNORE := .venv bench tests staticfiles var

.PHONY: install run test lint format bench clean vendor messages

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Parcours is serving on http://$(HOST):$(PORT)/ with a Celery worker and beat (Ctrl-C stops them)"
	$(BIN)/python manage.py run_embedded --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/transitions.py --quick

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Brings locale/fr/LC_MESSAGES/django.po in line with the code: new strings come in
# untranslated (or as fuzzy guesses to review), removed ones go. Then compiles django.mo,
# which is committed. Needs GNU gettext.
messages: install
	$(BIN)/python manage.py makemessages -l fr --no-obsolete $(addprefix --ignore=,$(MESSAGES_IGNORE))
	$(BIN)/python manage.py compilemessages -l fr $(addprefix --ignore=,$(MESSAGES_IGNORE))

# Re-download the vendored front-end files (needs npm; not needed to install or run).
vendor:
	scripts/vendor_assets.sh
