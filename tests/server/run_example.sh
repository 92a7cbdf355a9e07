#!/usr/bin/env bash
# Runs one example against a live `rl serve`: starts the server on an ephemeral loopback port
# (configs/reward_server.yaml), runs the example with RL_REWARD_URL pointing at it, then sends
# SIGTERM and requires a clean exit (0).
#   usage: run_example.sh [--auth] RL_BINARY PYTHON EXAMPLE.py
# --auth: the server requires a bearer token, which the example gets in RL_SERVE_TOKEN.
set -euo pipefail
auth=0
if [[ ${1:-} == --auth ]]; then auth=1; shift; fi
rl=$1 python=$2 example=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

unset RL_SERVE_TOKEN
args=(--log-level warn serve --config "$root/configs/reward_server.yaml" --port 0
      --port-file "$tmp/port" --summary-interval-s 0)
if (( auth )); then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/token"
  args+=(--auth-token-file "$tmp/token")
fi
"$rl" "${args[@]}" &
pid=$!
for _ in $(seq 1 400); do
  [[ -s $tmp/port ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "rl serve exited before listening" >&2; exit 1; }
  sleep 0.05
done
[[ -s $tmp/port ]] || { echo "rl serve did not listen within 20 s" >&2; exit 1; }

export RL_REWARD_URL="http://127.0.0.1:$(cat "$tmp/port")"
(( auth )) && export RL_SERVE_TOKEN="$(cat "$tmp/token")"
"$python" "$example"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
if (( status != 0 )); then
  echo "rl serve exited with $status after SIGTERM (expected 0)" >&2
  exit 1
fi
