# The verbs a newcomer types. See README.md.
CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: build run test lint fmt clean

## build: compile the four service binaries (debug)
build:
	$(CARGO) build --bins

## run: build and start core, search, scheduler and gateway in the foreground
run: build
	./scripts/run-all.sh

## test: every test, against the local PostgreSQL, RabbitMQ and Redis
test: build
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
