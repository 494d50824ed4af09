# sessiond: build, run, test, benchmark. Needs only the Rust toolchain (cargo).

CARGO ?= cargo

.PHONY: build serve test bench lint fmt clean

## build: compile the sessiond binary (release)
build:
	$(CARGO) build --release -p sessiond

## serve: build and run the daemon in the foreground on its built-in defaults
serve:
	$(CARGO) run --release -p sessiond -- serve

## test: every test of the workspace (unit, integration against the real binary, property tests)
test:
	$(CARGO) build -p sessiond --bin sessiond
	$(CARGO) test --workspace

## bench: the benchmarks whose figures are in docs/benchmarks.md
bench:
	$(CARGO) build --release -p sessiond --bin sessiond
	SESSIOND_BIN=$(CURDIR)/target/release/sessiond $(CARGO) bench -p sessiond-tests

## lint: clippy with warnings as errors, and a formatting check
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
