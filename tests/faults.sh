#!/usr/bin/env bash
# The fault suite at full size: `bash tests/faults.sh [pytest args...]` from a fresh clone.
#
# CI runs the same tests at reduced sizes as part of tests/run.sh. Here USAGEMETER_FAULT_FULL=1 sets:
#   1. the worker SIGKILLed 20 times over 1,000,000 events (embedded engine in the worker process);
#   2. 10 % of the events re-sent with the same event_id (in 1, and in 4);
#   3. the broker stopped for 20 s while producers emit (emit() p99 reported);
#   4. ClickHouse refusing inserts for 30 s;
#   5. the bad-input corpus mixed into good traffic;
#   and a worker dying between an insert and its commit, its partitions taken by another.
# Each test logs its figures (events, kills, duplicates, outage lengths, DLQ counts, latencies).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export USAGEMETER_FAULT_FULL=1
exec bash "$root/tests/run.sh" -p no:cacheprovider -o log_cli=true --log-cli-level=WARNING \
    tests/integration/test_fault_worker_kills.py tests/integration/test_fault_store_and_crash.py \
    tests/integration/test_producer_outage.py tests/integration/test_bad_input_corpus.py "$@"
