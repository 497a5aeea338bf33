#!/usr/bin/env bash
# Installs the docker CLI's compose plugin into ~/.docker/cli-plugins (or $DOCKER_CONFIG/cli-plugins) when
# the docker client lacks it, built from the plugin's Go module source (the Go module proxy is reachable
# where release binaries are not). tests/run.sh runs it, niced, beside pytest, then validates the compose
# file with `docker compose config -q`. Needs go; a no-op when `docker compose` already answers.
set -euo pipefail
version="${USAGEMETER_COMPOSE_VERSION:-v2.40.3}"
target="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
if docker compose version >/dev/null 2>&1; then
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "compose-plugin.sh: go is needed to build the compose plugin" >&2; exit 1; }
source_dir="$(go mod download -json "github.com/docker/compose/v2@$version" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$source_dir" ]] || { echo "compose-plugin.sh: could not fetch docker/compose $version" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
(cd "$source_dir" && go build -trimpath -ldflags "-X github.com/docker/compose/v2/internal.Version=$version" \
    -o "$target.partial" ./cmd)
mv "$target.partial" "$target"
docker compose version
