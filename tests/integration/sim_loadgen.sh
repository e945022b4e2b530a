#!/usr/bin/env bash
# The benchmark's load generator against the simulator (both loops): it completes transactions,
# checks every response (an exception counts as an error) and reports latency percentiles.
set -u
cd "$(dirname "$0")/../.."
B=${BMSGATE:-build/bmsgate}
L=build/tools/loadgen
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
if [ ! -x "$L" ]; then
	echo "ok 1 # SKIP $L not built (make tools)"
	echo "1..1"
	exit 0
fi
for mode in select fast; do
	rm -f "$tmp/ready"
	"$B" sim modbus --listen 127.0.0.1:0 --ready-file "$tmp/ready" $([ $mode = fast ] && echo --fast) >"$tmp/sim.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 1 250); do [ -s "$tmp/ready" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.02; done
	A=$(cat "$tmp/ready" 2>/dev/null)
	out=$("$L" --connect "$A" -c 8 -d 0.5 --warmup 0.1 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && grep -qE 'conns=8 alive=8 txns=[1-9][0-9]* .*p50_us=[0-9.]+ p99_us=[0-9.]+ errors=0' <<<"$out"; then
		ok "$mode loop: 8 connections of valid transactions ($out)"
	else
		no "$mode loop: 8 connections of valid transactions" "rc=$rc $out"
	fi
	# Past the table the device answers exception 02: every transaction is an error, exit 1.
	out=$("$L" --connect "$A" -c 2 -d 0.3 --warmup 0 --register 999 --count 2 2>&1)
	rc=$?
	if [ $rc -eq 1 ] && grep -qE 'txns=0 .*errors=[1-9]' <<<"$out"; then
		ok "$mode loop: exception responses are counted as errors"
	else
		no "$mode loop: exception responses are counted as errors" "rc=$rc $out"
	fi
	kill "$pid"
	wait "$pid"
done
echo "1..$n"
