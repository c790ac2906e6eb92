#!/usr/bin/env bash
# Re-create test/fixtures/strongswan/*.json (+ .pcapng): strongSwan vs strongSwan in throw-away
# network namespaces, captured with dumpcap, keys from charon's log, messages decrypted with node:crypto.
# Needs root, strongSwan and tshark (scripts/install-interop-deps.sh).
#   scripts/capture-strongswan-fixtures.sh [--out DIR] [scenario ...]   (no scenario: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
exec node dist/test/interop/tools/capture-strongswan-fixtures.js "$@"
