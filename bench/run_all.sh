#!/usr/bin/env bash
# Every webhook benchmark, one summary. Needs PostgreSQL on 127.0.0.1:5432
# (user postgres, trust auth), Redis on 127.0.0.1:6379 and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 3; }
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not running on 127.0.0.1:5432" >&2; exit 3; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis is not running on 127.0.0.1:6379" >&2; exit 3; }
exec python -m bench.run_all "$@"
