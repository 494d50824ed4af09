#!/bin/sh
# Installs the peers of the race into one folder outside the repository
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/sessiond-bench-peers). Each peer that
# cannot be installed is reported and skipped; the race then lists it as missing.
set -u
DIR=${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sessiond-bench-peers}
CODEX_VERSION=0.169.0
OPENCODE_VERSION=1.18.33
ACP_VERSION=5.2.0
mkdir -p "$DIR"
echo "peers folder: $DIR"

if command -v npm >/dev/null 2>&1; then
    if [ -x "$DIR/node_modules/.bin/codex" ] && [ -x "$DIR/node_modules/opencode-ai/bin/opencode.exe" ]; then
        echo "codex and opencode: already installed"
    else
        npm install --prefix "$DIR" --no-audit --no-fund \
            "@openai/codex@$CODEX_VERSION" "opencode-ai@$OPENCODE_VERSION" \
            || echo "codex/opencode: npm install failed (reported as missing)"
    fi
else
    echo "codex/opencode: npm not found (reported as missing)"
fi

if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y tmux >/dev/null || echo "tmux: apt-get failed (reported as missing)"
    else
        echo "tmux: not installed (install it with the system's package manager)"
    fi
fi

if [ -x "$DIR/acp/bin/simple_agent_v2" ]; then
    echo "ACP agent: already installed"
elif command -v cargo >/dev/null 2>&1; then
    # The crate's own example echo agent, built from the published crate.
    nice cargo install --quiet --root "$DIR/acp" --version "$ACP_VERSION" \
        --features stdio,unstable_protocol_v2 --example simple_agent_v2 agent-client-protocol \
        || echo "ACP agent: cargo install failed (reported as missing)"
else
    echo "ACP agent: cargo not found (reported as missing)"
fi
