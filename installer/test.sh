#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds the binaries the cross-process tests
# start, then runs the whole workspace's tests (cargo-nextest when present, else cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

bash installer/install-deps.sh test
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mosaicfs-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# The tests' binary has the test-only faults compiled in (a release build never does).
FEATURES=(--features mosaicfs-cli/fault-injection)
cargo build --workspace --bins "${FEATURES[@]}"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "${FEATURES[@]}"
else
  cargo test --workspace --no-fail-fast "${FEATURES[@]}"
fi
