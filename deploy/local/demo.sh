#!/usr/bin/env bash
# The README's first command: the whole pipeline on this machine, end to end.
# Creates or refreshes .venv, fetches the Kafka jars once, then runs `usagemeter demo` (extra args go to it).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/venv.sh
exec .venv/bin/usagemeter demo "$@"
