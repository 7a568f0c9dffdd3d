# The README's two commands: `make demo` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_test

# Debian packages, installed only when missing (as root, or through sudo).
APT_INSTALL = sh -c 'apt-get update -qq && apt-get install -y -qq "$$@" || (sudo apt-get update -qq && sudo apt-get install -y -qq "$$@")' apt

.PHONY: demo test setup fonts pdftools browser postgres lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools says, for any package whose folders are mapped as ours are (config/ is opsaudit.config),
	@# that the editable install uses an import finder: information, not a fault; it stays quiet.
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The report PDF writes Chinese in Noto Sans CJK SC, installed when missing. WeasyPrint subsets
# it with HarfBuzz when libharfbuzz-subset is there; its fallback, fontTools, takes about 14 s
# per report on Noto's CJK outlines instead of under one. Then the font is cut down once to the
# characters a report uses (reports/fonts.py): 3 MB a weight instead of 19, read by every PDF.
fonts: setup
	@fc-list ':family=Noto Sans CJK SC' | grep -q . || $(APT_INSTALL) fonts-noto-cjk
	@ldconfig -p | grep -q libharfbuzz-subset || $(APT_INSTALL) libharfbuzz-subset0
	@$(BIN)/python -m opsaudit.reports.fonts --if-missing

# The report tests read the PDF's fonts and text with poppler's pdffonts and pdftotext.
pdftools:
	@command -v pdffonts >/dev/null && command -v pdftotext >/dev/null || $(APT_INSTALL) poppler-utils

# The web's journey runs in headless Chromium, driven by Selenium through chromedriver.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || $(APT_INSTALL) chromium chromium-driver

demo: setup fonts
	$(BIN)/opsaudit demo

# The tests run every check on SQLite and on the local PostgreSQL; start it if it is down.
postgres: setup
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@$(BIN)/python -m opsaudit.store.create_database "$(PG_URL)"

test: setup fonts pdftools browser postgres
	OPSAUDIT_TEST_PG_URL=$(PG_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
