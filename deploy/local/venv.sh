#!/usr/bin/env bash
# Create or refresh the project virtualenv .venv at the repo root: system python3 (>= 3.11), latest pip,
# the project installed editable with the dev extras in strict mode.
#
# Quiet unless something fails (then the pip/venv output is printed). Idempotent and fast: the install
# is skipped while a stamp holds the same fingerprint. The fingerprint covers pyproject.toml AND the list
# of files in the mapped package dirs, because a strict editable install only sees modules that existed
# when it ran: a module added by a pull must trigger a reinstall, not just an edited pyproject.toml.
#
# PYTHON=/path/to/python3.x overrides the interpreter.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
stamp="$venv/.usagemeter-install-stamp"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "venv.sh: $python not found; install Python >= 3.11 (e.g. apt-get install python3 python3-venv)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "venv.sh: need Python >= 3.11, but $python is $("$python" -V 2>&1); set PYTHON=/path/to/python3.11+" >&2
    exit 1
fi

fingerprint() {
    cd "$root"
    {
        cat pyproject.toml
        find src/usagemeter cli api dashboard budgets query pricing consumers producers schemas deploy/local -type f \
            \( -name '*.py' -o -name '*.pyi' -o -name 'py.typed' -o -name '*.avsc' -o -name '*.sql' \
               -o -name '*.xml' -o -name '*.properties' -o -name '*.sh' \
               -o -name '*.js' -o -name '*.css' -o -name '*.svg' -o -name '*.LICENSE' \) \
            -not -path '*/__pycache__/*' 2>/dev/null | LC_ALL=C sort
    } | sha256sum | cut -d' ' -f1
}

want="$(fingerprint)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run() {
    if ! "$@" >>"$log" 2>&1; then
        cat "$log" >&2
        echo "venv.sh: failed: $*" >&2
        exit 1
    fi
}

# A venv whose interpreter no longer runs (python upgraded or removed) is rebuilt from scratch.
if [[ -d "$venv" ]] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    run "$python" -m venv "$venv"
fi
run "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
cd "$root"
run "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=strict
echo "$want" >"$stamp"
