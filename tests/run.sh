#!/usr/bin/env bash
# The test command: `bash tests/run.sh [pytest args...]` from a fresh clone.
#
# 1. deploy/local/venv.sh creates or refreshes .venv (fast when nothing changed);
# 2. the Kafka jars are fetched once into the shared cache (~/.cache/usagemeter, or $USAGEMETER_HOME);
# 3. ruff, mypy, the import contract (lint-imports: the dependency direction in pyproject.toml), pytest
#    and the compose file's validation (`docker compose config -q`, when there is a docker client: a
#    missing compose plugin is built from source by deploy/local/compose-plugin.sh, niced, while pytest
#    runs) all run, so one run shows every kind of failure; extra args go to pytest.
# Exits non-zero when any step fails; pytest's "no tests collected" (exit 5) is a failure too.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"

bash deploy/local/venv.sh || { echo "run.sh: virtualenv setup failed" >&2; exit 1; }
"$py" -c 'from usagemeter.local.kafka import LocalKafka; LocalKafka().ensure_jars()' \
    || { echo "run.sh: fetching the Kafka jars failed" >&2; exit 1; }

compose_build=""
if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 && command -v go >/dev/null 2>&1; then
    mkdir -p build
    nice -n 19 bash deploy/local/compose-plugin.sh >build/compose-plugin.log 2>&1 &
    compose_build=$!
fi

failed=()
echo "== ruff check"
"$py" -m ruff check . || failed+=("ruff")
echo "== mypy"
"$py" -m mypy || failed+=("mypy")
echo "== import contract"
"$root/.venv/bin/lint-imports" || failed+=("import contract")
echo "== pytest"
"$py" -m pytest -q "$@"
status=$?
if [[ $status -eq 5 ]]; then
    echo "run.sh: pytest collected no tests" >&2
fi
[[ $status -eq 0 ]] || failed+=("pytest (exit $status)")
if [[ -n "$compose_build" ]] && ! wait "$compose_build"; then
    echo "run.sh: building the compose plugin failed (build/compose-plugin.log):" >&2
    tail -5 build/compose-plugin.log >&2
    failed+=("compose plugin build")
fi
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    echo "== docker compose config"
    docker compose -f deploy/compose/docker-compose.yml config -q || failed+=("docker compose config")
else
    echo "== docker compose config: skipped (no docker client with the compose plugin)"
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all passed"
