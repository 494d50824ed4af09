# sessiond: build, run, test, benchmark. Needs only the Rust toolchain (cargo).

CARGO ?= cargo

.PHONY: build serve test bench bench-peers lint fmt clean

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

## bench-peers: the peer race (bench/peers/README.md): installs Codex app-server, opencode,
## the ACP reference agent (and tmux if missing) outside the repository, then races them
PEERS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sessiond-bench-peers
bench-peers:
	$(CARGO) build --release -p sessiond --bin sessiond
	$(CARGO) build --release -p sessiond-tests --example bare_server
	PEERS_DIR=$(PEERS_DIR) sh bench/peers/install.sh
	python3 bench/peers/race.py --peers-dir $(PEERS_DIR) \
		--sessiond $(CURDIR)/target/release/sessiond \
		--bare $(CURDIR)/target/release/examples/bare_server $(RACE_ARGS)

## lint: clippy with warnings as errors, and a formatting check
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
