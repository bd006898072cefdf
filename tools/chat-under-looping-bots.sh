#!/usr/bin/env bash
# Chat latency while bot plugins loop (docs/performance.md, "Chat while bots loop"): a release
# hearth with the test bot in its plugins folder, one socket sending /spin 8 times a second
# (each call loops until its CPU budget, `bots.call_cpu_ms`, stops it), and a chat load of
# 100 sockets in 10 rooms at 100 msg/s measuring delivery latency. `quiet` leaves out the
# spinner. EXTRA adds HEARTH_* settings, e.g. EXTRA="HEARTH_BOTS__THREADS=2".
# Needs target/release/hearth and target/release/hearth-load (cargo build --release --workspace).
set -euo pipefail
MODE=${1:-spin}
REPO=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d)
mkdir -p $D/data/plugins && cp $REPO/plugins/dist/testbot.wasm $D/data/plugins/
cd $D
# Every limit that would slow the attack down is off: four calls of the plugin at once, no
# pause after failures, no retries.
# shellcheck disable=SC2086
env HEARTH_WS__RATE_PER_SEC=0 HEARTH_AUTH__REGISTRATIONS_PER_IP_PER_HOUR=0 HEARTH_ROOMS__CREATIONS_PER_USER_PER_HOUR=0 \
  HEARTH_BOTS__CONCURRENCY=4 HEARTH_BOTS__PAUSE_AFTER_FAILURES=0 HEARTH_BOTS__MAX_ATTEMPTS=1 ${EXTRA:-} \
  $REPO/target/release/hearth --data-dir $D/data --bind 127.0.0.1:7950 > $D/server.log 2>&1 &
PID=$!
for i in $(seq 100); do curl -fs http://127.0.0.1:7950/healthz >/dev/null 2>&1 && break; sleep 0.2; done
L=$REPO/target/release/hearth-load
if [ "$MODE" = spin ]; then
  $L --url http://127.0.0.1:7950 --sockets 1 --users 1 --rooms 1 --rate 8 --duration 75 --drain 30 \
     --command "/spin" --prefix spinner > $D/spin.out 2>&1 &
  SP=$!
  sleep 15
fi
$L --url http://127.0.0.1:7950 --sockets 100 --users 20 --rooms 10 --rate 100 --duration 30 --pid $PID --prefix chat > $D/chat.out 2>&1
grep -E 'latency|deliver|acks' $D/chat.out | head -4
grep -o '"server_cpu_s":[0-9.]*' $D/chat.out
if [ "$MODE" = spin ]; then
  kill $SP 2>/dev/null || true
  echo "spins stopped by their CPU budget: $(grep -c 'used up its' $D/server.log || true)"
fi
kill $PID; wait $PID 2>/dev/null || true
rm -rf "$D"
