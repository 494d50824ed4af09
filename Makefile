# sessiond: build, run, test, benchmark. Needs only the Rust toolchain (cargo).

CARGO ?= cargo
# Where `make install` puts things (bin/, share/man/, share/*/completions, share/systemd/user/).
PREFIX ?= $(HOME)/.local
# The binary `install-files` installs.
BIN ?= target/release/sessiond

.PHONY: build serve test bench bench-peers lint fmt clean schema install install-files

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

## bench: the benchmarks whose figures are in docs/benchmarks.md (release code with line tables)
bench:
	$(CARGO) build --profile profiling -p sessiond --bin sessiond
	SESSIOND_BIN=$(CURDIR)/target/profiling/sessiond $(CARGO) bench -p sessiond-tests

## schema: regenerate protocol/schema/ (JSON Schema and OpenRPC) from the protocol crate
schema:
	SESSIOND_UPDATE_SCHEMA=1 $(CARGO) test -p sessiond-protocol --test schema

## install: build, then install the binary, man page, completions and systemd user units under PREFIX
install: build install-files

install-files:
	install -d $(PREFIX)/bin $(PREFIX)/share/man/man1 \
		$(PREFIX)/share/bash-completion/completions $(PREFIX)/share/zsh/site-functions \
		$(PREFIX)/share/fish/vendor_completions.d $(PREFIX)/share/systemd/user
	install -m 0755 $(BIN) $(PREFIX)/bin/sessiond
	$(BIN) man > $(PREFIX)/share/man/man1/sessiond.1
	$(BIN) completions bash > $(PREFIX)/share/bash-completion/completions/sessiond
	$(BIN) completions zsh > $(PREFIX)/share/zsh/site-functions/_sessiond
	$(BIN) completions fish > $(PREFIX)/share/fish/vendor_completions.d/sessiond.fish
	sed 's|@BINDIR@|$(PREFIX)/bin|g' contrib/systemd/sessiond.service > $(PREFIX)/share/systemd/user/sessiond.service
	install -m 0644 contrib/systemd/sessiond.socket $(PREFIX)/share/systemd/user/sessiond.socket

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
