# The verbs a newcomer types. See README.md.
CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: build run seed test lint fmt check contract-check openapi compose-check ops-check e2e clean load

# PROFILE=release builds and runs optimised binaries (make run, make seed).
PROFILE ?= debug
target := $(or $(CARGO_TARGET_DIR),target)

## build: compile the four service binaries (debug; PROFILE=release for optimised ones)
build:
	./scripts/build-tools.sh
	$(CARGO) build --bins $(if $(filter release,$(PROFILE)),--release)

## run: build, seed the data set (first time only), and start the four services
run: build
	PROFILE=$(PROFILE) ./scripts/run-all.sh

## load: the mobile mix against `make run` (RATE a second, 100; SECONDS, 30; LOAD_PROFILE
## steady, ramp or spike); a table per transaction, and the JSON in $(target)/load-report.json
load:
	$(CARGO) build --release -p spruce-loadgen
	$(target)/release/spruce-loadgen mix --rate $(or $(RATE),100) --seconds $(or $(SECONDS),30) \
		--profile $(or $(LOAD_PROFILE),steady) --json $(target)/load-report.json

## seed: load the curated data set into spruce_core (once; later runs change nothing)
seed: build
	$(target)/$(PROFILE)/spruce-core seed

## test: every test, against the local PostgreSQL, RabbitMQ and Redis
test: build
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore openapi-spec-validator aiosmtpd "moto[server]==5.2.6" pyarrow==26.0.1 duckdb==2.0.1
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif

## check: the deployment files: Helm chart (render, lint, Kubernetes 1.33 schemas), compose,
## observability config (alert rules and their promtool tests, routes), terraform fmt, checkov over Terraform, the Dockerfile and the chart;
## then the contracts (scripts/contract-check.sh)
check: build
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/deploy/requirements.txt
	./scripts/ops-tools.sh
	python3 -m unittest discover -s tests/deploy -v
	python3 tests/deploy/guards.py
	./scripts/check-static.sh
	./scripts/contract-check.sh

## ops-check: the services as `make run` starts them, with Prometheus and Alertmanager from
## Debian's packages on the repo's rules and routes: stopping the scheduler pages a local
## Slack-shaped sink, starting it again resolves the page (about 3 minutes)
ops-check: build
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pyyaml
	./scripts/ops-tools.sh
	PROFILE=$(PROFILE) python3 scripts/ops-check.py

## contract-check: proto and the REST API against the commit before (or CONTRACT_BASE) for
## breaking changes, and the events' AsyncAPI document validated
contract-check:
	./scripts/contract-check.sh

## openapi: write the REST API's document the gateway serves to docs/openapi.json
openapi: build
	$(or $(CARGO_TARGET_DIR),target)/debug/spruce-gateway openapi > docs/openapi.json

## e2e: the end-to-end suite (the mobile journeys on the curated data) against a running
## Spruce: make e2e BASE_URL=http://localhost:8080 (CD runs it against e2e)
e2e:
	@test -n "$(BASE_URL)" || { echo "usage: make e2e BASE_URL=http://localhost:8080" >&2; exit 2; }
	python3 scripts/e2e.py "$(BASE_URL)"

## compose-check: make every image from Debian packages (no registry needed), run the compose
## stack and the end-to-end suite and the walk-throughs against it (root; installs Docker)
compose-check:
	./scripts/compose-check.sh

## lint: formatting, clippy (warnings are errors), no file over 800 lines, no import cycles
lint:
	./scripts/build-tools.sh
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 scripts/code-shape.py crates/*/src tests/src
	@! $(CARGO) tree -p spruce-gateway -e normal --prefix none | grep -qE '^(sqlx|lapin) ' \
		|| { echo "the gateway must not link sqlx or lapin (it holds no database or bus)" >&2; exit 1; }

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
