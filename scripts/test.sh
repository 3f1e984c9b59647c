#!/usr/bin/env bash
# The project's test command (README, CI): start the services the tests
# need, then run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --workspace --locked "$@"
