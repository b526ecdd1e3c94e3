#!/usr/bin/env bash
# HTTP benchmark of jwtauth beside the anchors (../shared/anchors), with their own wrk
# driver (bench_http.py): rounds alternate between targets, ratios are taken per round.
#
#   bench/http.sh ANCHORS_DIR [bench_http.py options...]
#
# ANCHORS_DIR is a copy of ../shared/anchors set up as its README says (npm ci in
# express-seed, .venv-naive); a copy keeps shared/ clean. Example (the results table in
# bench/README.md came from this):
#   cp -r ../shared/anchors /tmp/anchors && (cd /tmp/anchors/express-seed && npm ci)
#   python3 -m venv /tmp/anchors/.venv-naive && /tmp/anchors/.venv-naive/bin/pip install -r /tmp/anchors/fastapi-naive/requirements.txt
#   bench/http.sh /tmp/anchors --rounds 5 --tests me
set -euo pipefail
anchors=$(cd "$1" && pwd); shift
project=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/jwtauth-bench.XXXXXX)
env="JWTAUTH_LOG_LEVEL=WARNING"
jw="cd $work && $env exec $project/.venv/bin/jwtauth serve"
targets=$work/targets.txt
# jwtauth first: bench_http.py takes the first target as the ratio baseline.
{
  echo "jwtauth-2w | 3111 | JWTAUTH_DATABASE_URL=sqlite:///$work/2w.db $jw --port {port} --workers 2"
  echo "jwtauth-1w | 3110 | JWTAUTH_DATABASE_URL=sqlite:///$work/1w.db $jw --port {port}"
  grep -v '^#' "$anchors/targets.txt" | grep -v '^ *$'
} > "$targets"
cd "$anchors"
exec python3 bench_http.py --targets "$targets" \
  --only "${ONLY:-jwtauth-2w,jwtauth-1w,express-seed-keyobj-cluster2,fastapi-naive-2w,express-seed-keyobj,fastapi-naive-1w}" \
  "$@"
