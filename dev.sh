#!/usr/bin/env bash
# The project's two entry points on a fresh machine with Python 3.11+:
#   ./dev.sh serve [recograph serve options]   start the API on the embedded PostgreSQL
#   ./dev.sh test  [pytest options]            lint, type-check and run every test (CI runs this)
set -euo pipefail
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}  # implicit (ALS) is slower with threaded BLAS
cd "$(dirname "$0")"

find_python() {
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Recograph needs Python 3.11 or newer on PATH (or set PYTHON=...)" >&2
  return 1
}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  local stamp=.venv/.recograph-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch "$stamp"
  fi
  # The Python client (clients/python), and ariadne-codegen that generates it and checks it
  # against schema.graphql: a venv of its own, for it needs graphql-core<3.3, which the
  # server's strawberry-graphql does not allow.
  local client_stamp=.venv/.recograph-client-installed
  if [ ! -f "$client_stamp" ] || [ clients/python/pyproject.toml -nt "$client_stamp" ]; then
    .venv/bin/python -m pip install --quiet -e clients/python
    [ -x .venv/codegen/bin/python ] || "$(find_python)" -m venv .venv/codegen
    .venv/codegen/bin/python -m pip install --quiet -e 'clients/python[codegen]'
    touch "$client_stamp"
  fi
  # GraphiQL's JS/CSS come from the npm registry once, so the IDE works offline afterwards.
  .venv/bin/python -m gql.server.graphiql >/dev/null
}

redis_answers() {
  .venv/bin/python - "$1" <<'PY'
import sys
import redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
}

ensure_redis() {
  local url=${REDIS_URL:-redis://127.0.0.1:6379/15}
  redis_answers "$url" && return 0
  if [ -n "${REDIS_URL:-}" ]; then
    echo "REDIS_URL=$REDIS_URL does not answer" >&2; return 1
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "no Redis on 127.0.0.1:6379 and no redis-server: installing Debian's redis-server" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p .recograph/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$PWD/.recograph/redis" --logfile "$PWD/.recograph/redis/redis.log"
  for _ in $(seq 50); do redis_answers "$url" && return 0; sleep 0.1; done
  echo "started redis-server but it does not answer" >&2; return 1
}

# The browser tests drive Debian's Chromium (Playwright uses this binary; nothing else is
# downloaded). Without root or apt they are skipped, saying why.
ensure_chromium() {
  command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1 && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "no chromium: installing Debian's chromium for the browser tests" >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      $sudo apt-get install -y -qq chromium >/dev/null; } ||
    echo "could not install chromium: the browser tests will be skipped" >&2
}

command=${1:-}
shift || true
case "$command" in
  serve)
    setup
    exec .venv/bin/recograph serve "$@"
    ;;
  test)
    setup
    ensure_redis
    ensure_chromium
    .venv/bin/ruff check .
    .venv/bin/ruff format --check gql engines plugins storage clients
    .venv/bin/mypy  # files and settings: [tool.mypy] in pyproject.toml
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh serve|test [args]" >&2
    exit 2
    ;;
esac
