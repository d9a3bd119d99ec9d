# Developer commands for the crm_workflow_automation Odoo 18.0 addon.
# This repository's root IS the addon. Run `make` (or `make help`) for the list.

SHELL         := /bin/bash
.SHELLFLAGS   := -eu -o pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

ADDON     := crm_workflow_automation
MODULES   ?= crm,project,$(ADDON)
# The Python tried first; when it cannot import Odoo 18, .build/venv is made from it.
PYTHON    ?= python3
# Where Odoo comes from when $(PYTHON) cannot import Odoo 18: a git URL (shallow clone of
# ODOO_BRANCH), a local git repository (ODOO_BRANCH is read) or a local Odoo tree (linked).
ODOO_SRC    ?= https://github.com/odoo/odoo
ODOO_BRANCH ?= 18.0
# PostgreSQL: the server reachable as the current user (libpq's PGHOST, PGPORT), else a
# private cluster in .build/pgdata; PG=private always takes the private cluster.
# PG_BIN_DIR: the folder of initdb and pg_ctl (default: the PATH's, else the newest /usr/lib/postgresql/<version>/bin).
PG         ?= auto
PG_BIN_DIR ?=
DEMO_DB   ?= cwa_demo
TEST_DB   ?= cwa_test
BENCH_DB  ?= cwa_bench
ODOO_STOCK_DB ?= cwa_odoo_stock
ODOO_ADDON_DB ?= cwa_odoo_addon
# Odoo's own suites run by `make test-odoo`, without and with this addon
ODOO_SUITES   ?= crm project
STOCK_MODULES := crm,project
BENCH_ARGS ?=
HTTP_PORT ?= 8069
# The port of the HTTP server that the tests (tours) start; set it to run two test runs side by side.
TEST_HTTP_PORT ?= 8069
# What `make test` runs: a file or a folder of the addon (e.g. TESTS=tests/test_engine.py).
TESTS ?= tests
# FRESH=0 reuses the test database as it is (after `make update`), instead of creating it anew.
FRESH ?= 1
# `make test-fresh`: the clone, and the Odoo tree it installs from (default: the one Odoo runs from here)
FRESH_DIR      ?= $(or $(TMPDIR),/tmp)/$(ADDON)-test-fresh
FRESH_ODOO_SRC ?= $(patsubst %/addons,%,$(ODOO_ADDONS))

# Odoo and pytest-odoo need the addon folder to be named after the addon, but
# the checkout may have any name: .build/addons/$(ADDON) links back to the root.
BUILD        := $(CURDIR)/.build
BUILD_ADDONS := $(BUILD)/addons
ADDON_LINK   := $(BUILD_ADDONS)/$(ADDON)
# Odoo data dir (filestore, sessions) kept inside .build/, not in ~/.local.
DATA_DIR     := $(BUILD)/data

# $(call bootstrap,STEP): tools/bootstrap.sh STEP, which prints its progress and returns its
# result (nothing when it fails, after saying why: make stops).
bootstrap = $(or $(shell BUILD='$(BUILD)' PYTHON='$(PYTHON)' ODOO_SRC='$(ODOO_SRC)' ODOO_BRANCH='$(ODOO_BRANCH)' \
  PG='$(PG)' PG_BIN_DIR='$(PG_BIN_DIR)' PGHOST='$(PGHOST)' PGPORT='$(PGPORT)' tools/bootstrap.sh $(1)),$(error tools/bootstrap.sh $(1) failed))
# The following are computed once, on first use, so that `make help` needs neither Odoo nor PostgreSQL.
# PY: the Python that runs Odoo 18 and the test tools: $(PYTHON), or .build/venv made from ODOO_SRC.
PY = $(eval PY := $(call bootstrap,odoo))$(PY)
# Odoo's standard addons (crm, project, ...) sit next to the `odoo` package.
ODOO_ADDONS = $(eval ODOO_ADDONS := $(shell $(PY) -c 'import odoo, os; print(os.path.realpath(os.path.join(odoo.__path__[0], "..", "addons")))' 2>/dev/null))$(ODOO_ADDONS)
# PG_ENV: libpq's variables for the private cluster ("server": nothing to set).
PG_SERVER = $(eval PG_SERVER := $(call bootstrap,postgresql))$(PG_SERVER)
PG_ENV    = $(if $(filter server,$(PG_SERVER)),,PGHOST=$(word 1,$(PG_SERVER)) PGPORT=$(word 2,$(PG_SERVER)))
PSQL      = $(PG_ENV) psql
DROPDB    = $(PG_ENV) dropdb
PYTEST    = $(PG_ENV) $(PY) -m pytest -p no:cacheprovider
ADDONS_PATH = $(ODOO_ADDONS),$(BUILD_ADDONS)
ODOO        = $(PG_ENV) $(PY) -m odoo --addons-path=$(ADDONS_PATH) --data-dir=$(DATA_DIR)

# Python tools needed by test/lint (import names of requirements-dev.txt).
DEV_MODULES := pytest pytest_odoo websocket freezegun ruff pylint_odoo

.PHONY: help check-env deps chromium link demo test update test-odoo lint bench stop-db test-fresh clean

## help: list the commands (default)
help:
	@echo "Commands for the $(ADDON) addon (Odoo 18.0 Community):"
	@echo "  make demo       fresh '$(DEMO_DB)' database with crm, project, $(ADDON) and"
	@echo "                  demo data, then serve Odoo on http://localhost:$(HTTP_PORT) (admin/admin)"
	@echo "  make test       fresh '$(TEST_DB)' database, then the addon's tests with pytest-odoo"
	@echo "                  (TESTS=tests/test_x.py: one file; FRESH=0: reuse the database)"
	@echo "  make update     upgrade the addon in the '$(TEST_DB)' database"
	@echo "  make lint       ruff + pylint-odoo"
	@echo "  make test-odoo  Odoo's own crm and project tests, without then with $(ADDON)"
	@echo "  make bench      fresh '$(BENCH_DB)' database, then this addon against base_automation"
	@echo "  make check-env  bring Odoo 18 and PostgreSQL when missing (.build/venv, .build/pgdata)"
	@echo "  make stop-db    stop the private PostgreSQL cluster of .build/pgdata"
	@echo "  make test-fresh make test in a clone, as on a new machine (no Odoo, private PostgreSQL)"
	@echo "  make clean      remove .build/ and drop the $(DEMO_DB) / $(TEST_DB) databases"
	@echo "Variables: PYTHON=$(PYTHON) ODOO_SRC=$(ODOO_SRC) ODOO_BRANCH=$(ODOO_BRANCH) PG=$(PG)"
	@echo "           DEMO_DB=$(DEMO_DB) TEST_DB=$(TEST_DB) HTTP_PORT=$(HTTP_PORT) TEST_HTTP_PORT=$(TEST_HTTP_PORT)"

## check-env: bring Odoo 18 and PostgreSQL when missing (tools/bootstrap.sh), then check them
check-env:
	@test -f "$(ODOO_ADDONS)/crm/__manifest__.py" \
	  || { echo "ERROR: Odoo's standard addons (crm, project) were not found next to the odoo package of $(PY) ($(ODOO_ADDONS))" >&2; exit 1; }
	@$(PSQL) -d postgres -Atqc 'select 1' >/dev/null \
	  || { echo "ERROR: PostgreSQL is not reachable as role $$(id -un) without password: create the role (createuser -s $$(id -un)), or use PG=private" >&2; exit 1; }

## deps: install the Python dev tools of requirements-dev.txt, only if one is missing
deps:
	@if $(PY) -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))' $(DEV_MODULES); then \
	  echo ">> Test tools (requirements-dev.txt): installed"; \
	else \
	  echo ">> Test tools: installing requirements-dev.txt"; \
	  PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1 $(PY) -m pip install -qq -r requirements-dev.txt; \
	fi

## chromium: install a headless browser for Odoo's browser tests (tours), only if missing
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then \
	  echo ">> Browser for the tours: installed"; \
	else \
	  echo ">> Browser for the tours: installing Debian's chromium"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || { echo "ERROR: could not install chromium (apt-get needs root): sudo apt-get install -y chromium" >&2; exit 1; }; \
	fi

## link: (re)create .build/addons/$(ADDON) -> repository root
link:
	@mkdir -p $(BUILD_ADDONS) $(DATA_DIR)
	@ln -sfn ../.. $(ADDON_LINK)

# $(call fresh_db,DB[,MODULES]): drop DB (and its filestore), then create it with
# MODULES (default: $(MODULES)) and demo data. Fails, printing the log, on any
# install error or when one of the modules is not installed.
define fresh_db
	@echo ">> Creating database $(1) with $(or $(2),$(MODULES)) + demo data (log: .build/install-$(1).log)"
	@$(DROPDB) --if-exists --force $(1)
	@rm -rf $(DATA_DIR)/filestore/$(1)
	@log=$(BUILD)/install-$(1).log; rm -f $$log; \
	if ! $(ODOO) -d $(1) -i $(or $(2),$(MODULES)) --stop-after-init --logfile=$$log \
	   || grep -qE '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' $$log \
	   || [ "$$($(PSQL) -d $(1) -Atqc "select count(*) from ir_module_module where state = 'installed' \
	          and name = any(string_to_array('$(or $(2),$(MODULES))', ','))")" \
	        != "$$(echo '$(or $(2),$(MODULES))' | tr ',' '\n' | wc -l)" ]; then \
	  echo "ERROR: installing $(or $(2),$(MODULES)) into $(1) failed. Errors, then the end of $$log:" >&2; \
	  grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' $$log | head -n 20 >&2 || true; \
	  echo "-----" >&2; tail -n 40 $$log >&2; exit 1; \
	fi
endef

## demo: fresh demo database, then serve Odoo in the foreground (Ctrl+C to stop)
demo: check-env link
	$(call fresh_db,$(DEMO_DB))
	@echo ">> Odoo on http://localhost:$(HTTP_PORT) - database $(DEMO_DB), login admin / password admin (Ctrl+C to stop)"
	@$(ODOO) -d $(DEMO_DB) --db-filter='^$(DEMO_DB)$$' --http-port=$(HTTP_PORT)

## test: fresh test database, then the addon's tests with pytest-odoo (HTTP server on)
# --rootdir keeps pytest on the symlinked path, so that test modules are named
# odoo.addons.$(ADDON).tests.* whatever the checkout folder is called.
# The log-handler hides the spurious "Importing test framework" ERROR (with a
# stack) that Odoo 18 logs when pytest-odoo imports odoo.tests.
test: check-env deps chromium link
	$(if $(filter 1,$(FRESH)),$(call fresh_db,$(TEST_DB)))
	@echo ">> Running the tests of $(ADDON) with pytest-odoo on $(TEST_DB)"
	@$(PYTEST) --rootdir=$(BUILD_ADDONS) \
	  --odoo-database=$(TEST_DB) --odoo-addons-path=$(ADDONS_PATH) \
	  --odoo-extra=data-dir=$(DATA_DIR) --odoo-extra=log-handler=odoo.tests.common:CRITICAL \
	  --odoo-extra=http-port=$(TEST_HTTP_PORT) --odoo-http --odoo-log-level=warn \
	  $(addprefix $(ADDON_LINK)/,$(TESTS))

## update: upgrade the addon in the existing test database (after changing a field or a view)
update: check-env link
	@echo ">> Upgrading $(ADDON) in $(TEST_DB) (log: .build/update-$(TEST_DB).log)"
	@$(ODOO) -d $(TEST_DB) -u $(ADDON) --stop-after-init --logfile=$(BUILD)/update-$(TEST_DB).log \
	  || { tail -n 40 $(BUILD)/update-$(TEST_DB).log >&2; exit 1; }

## lint: ruff on the repository, pylint + pylint-odoo on the addon
# (pylint runs from .build/addons so that the module is named $(ADDON))
lint: deps link
	@rc=0; \
	echo ">> ruff check ."; \
	$(PY) -m ruff check . || rc=1; \
	echo ">> pylint (pylint-odoo) on $(ADDON)"; \
	if [ -z "$$(find . -path ./.build -prune -o -path ./.git -prune -o -name '*.py' -print -quit)" ]; then \
	  echo "no Python file yet: skipped"; \
	else \
	  (cd $(BUILD_ADDONS) && $(PY) -m pylint --rcfile=$(CURDIR)/.pylintrc $(ADDON)) || rc=1; \
	fi; \
	exit $$rc

## test-odoo: Odoo's own crm and project suites (tours included) on a stock database and on
## one with this addon; fails only on tests that pass on stock Odoo and fail with the addon
test-odoo: check-env deps chromium link
	$(call fresh_db,$(ODOO_STOCK_DB),$(STOCK_MODULES))
	$(call fresh_db,$(ODOO_ADDON_DB))
	@for db in $(ODOO_STOCK_DB) $(ODOO_ADDON_DB); do \
	  echo ">> Odoo's $(ODOO_SUITES) tests on $$db"; \
	  $(PYTEST) -q --rootdir=$(ODOO_ADDONS) \
	    --odoo-database=$$db --odoo-addons-path=$(ADDONS_PATH) --odoo-extra=data-dir=$(DATA_DIR) \
	    --odoo-extra=http-port=$(TEST_HTTP_PORT) --odoo-http --odoo-log-level=critical --junitxml=$(BUILD)/odoo-tests-$$db.xml \
	    $(addprefix $(ODOO_ADDONS)/,$(addsuffix /tests,$(ODOO_SUITES))) | tail -n 3 || true; \
	done
	@$(PY) tools/compare_test_runs.py $(BUILD)/odoo-tests-$(ODOO_STOCK_DB).xml $(BUILD)/odoo-tests-$(ODOO_ADDON_DB).xml

## bench: this addon and Odoo's Automation Rules side by side, as ratios to a plain write
bench: MODULES := crm,project,base_automation,$(ADDON)
bench: check-env link
	$(call fresh_db,$(BENCH_DB))
	@$(PG_ENV) $(PY) bench/bench.py --database=$(BENCH_DB) --addons-path=$(ADDONS_PATH) $(BENCH_ARGS)

## stop-db: stop the private PostgreSQL cluster of .build/pgdata (if it runs)
stop-db:
	@BUILD='$(BUILD)' tools/bootstrap.sh stop-postgresql

## test-fresh: `make test` as a new user runs it: in a clone of this repository's HEAD in
## $(FRESH_DIR), with a Python that has no Odoo, Odoo 18 from FRESH_ODOO_SRC and a private
## PostgreSQL. Run it again to time the second run, which reuses the clone's .build/.
test-fresh:
	@echo ">> Cloning HEAD into $(FRESH_DIR)/repo, with a Python without Odoo in $(FRESH_DIR)/python; Odoo from $(FRESH_ODOO_SRC)"
	@if [ -d $(FRESH_DIR)/repo ]; then git -C $(FRESH_DIR)/repo fetch -q $(CURDIR) HEAD && git -C $(FRESH_DIR)/repo reset -q --hard FETCH_HEAD; \
	 else git clone -q $(CURDIR) $(FRESH_DIR)/repo; fi
	@[ -x $(FRESH_DIR)/python/bin/python ] || $(PYTHON) -m venv --without-pip $(FRESH_DIR)/python
	@! $(FRESH_DIR)/python/bin/python -c 'import odoo' 2>/dev/null \
	  || { echo "ERROR: $(FRESH_DIR)/python imports Odoo: this test needs a Python without it" >&2; exit 1; }
	@rc=0; time $(MAKE) -C $(FRESH_DIR)/repo test PYTHON=$(FRESH_DIR)/python/bin/python \
	  ODOO_SRC=$(FRESH_ODOO_SRC) PG=private TESTS="$(TESTS)" TEST_DB=$(TEST_DB) TEST_HTTP_PORT=$(TEST_HTTP_PORT) || rc=$$?; \
	 $(MAKE) -s -C $(FRESH_DIR)/repo stop-db; exit $$rc

## clean: stop the private PostgreSQL, remove .build/ (addon link, Odoo data, logs, venv,
## Odoo link or copy, private cluster) and drop the databases of the reachable server
clean: stop-db
ifneq ($(PG),private)
	-@dropdb --if-exists --force $(DEMO_DB) 2>/dev/null
	-@dropdb --if-exists --force $(TEST_DB) 2>/dev/null
	-@dropdb --if-exists --force $(BENCH_DB) 2>/dev/null
	-@dropdb --if-exists --force $(ODOO_STOCK_DB) 2>/dev/null
	-@dropdb --if-exists --force $(ODOO_ADDON_DB) 2>/dev/null
endif
	rm -rf $(BUILD)

## test-slow: the slow tests, not part of `make test`: real odoo-bin servers (prefork and
## threaded, ports 8090-8092) on the test database, driven by parallel XML-RPC clients; an
## exported module installed into a fresh database $(TEST_DB)_b (SLOW_TESTS: some of them)
SLOW_TESTS ?= $(sort $(wildcard tests/slow_test_*.py))
.PHONY: test-slow
test-slow: check-env deps link
	$(if $(filter 1,$(FRESH)),$(call fresh_db,$(TEST_DB)))
	@echo ">> Running the slow tests of $(ADDON) with pytest-odoo on $(TEST_DB)"
	@$(PYTEST) -s --rootdir=$(BUILD_ADDONS) \
	  --odoo-database=$(TEST_DB) --odoo-addons-path=$(ADDONS_PATH) \
	  --odoo-extra=data-dir=$(DATA_DIR) --odoo-extra=log-handler=odoo.tests.common:CRITICAL \
	  --odoo-log-level=warn $(addprefix $(ADDON_LINK)/,$(SLOW_TESTS))
