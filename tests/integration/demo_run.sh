#!/usr/bin/env bash
# `make demo` works: scripts/demo runs end to end (PKI, simulator, guard, tunnel, head-end),
# every outcome line is the expected one, the audit trail verifies, it stops what it started,
# and it takes well under a minute.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
has() { # NAME PATTERN: a line of the demo's output matches
	if grep -qE -- "$2" "$tmp/out"; then ok "$1"; else no "$1" "no line matches: $2"; fi
}
t0=$(date +%s)
timeout 120 scripts/demo >"$tmp/out" 2>&1
rc=$?
secs=$(($(date +%s) - t0))
if [ $rc -eq 0 ]; then ok "scripts/demo exits 0"; else no "scripts/demo exits 0 (got $rc)" "$(tail -20 "$tmp/out")"; fi
if [ $secs -lt 60 ]; then ok "demo takes under a minute ($secs s)"; else no "demo takes under a minute ($secs s)"; fi
has "mbpoll reads the setpoint through tunnel and guard" '^  \[allowed\] mbpoll reads ahu1\.supply_air_setpoint \(holding 100\): 18\.0 degC  -- as expected$'
has "an in-range setpoint write is allowed" '^  \[allowed\] write ahu1\.supply_air_setpoint 21\.0 degC .*accepted  -- as expected$'
has "the written setpoint reads back" '^  \[allowed\] read the setpoint back: 21\.0 degC  -- as expected$'
has "an out-of-range setpoint write is denied with exception 01" '^  \[denied \] write ahu1\.supply_air_setpoint 45\.0 degC .*exception 01 Illegal Function  -- as expected$'
has "a forbidden register write is denied with exception 01" '^  \[denied \] write holding register 103 .*exception 01 Illegal Function  -- as expected$'
has "a diagnostics request is denied with exception 01" '^  \[denied \] send a diagnostics request \(function 08\): exception 01 Illegal Function  -- as expected$'
has "the connection survives the denials" '^  \[allowed\] the connection is still up after the denials: setpoint 21\.0 degC  -- as expected$'
has "the revoked certificate is refused" "^  \[refused\] connect with the revoked certificate of 'stolen-laptop': .*  -- as expected$"
has "the audit trail verifies" '^  \[verified\] audit verify: OK: [0-9]+ records'
has "the guard recorded the out-of-range reason and rule" 'write 45\.0 degC to ahu1\.supply_air_setpoint outside the allowed 18\.0\.\.26\.0 \[rule hvac-plant\.policy:[0-9]+\]'
has "the guard recorded the revocation refusal" 'refused: .*certificate revoked'
has "the audit summary counts the denials" '^ +3 +deny$'
has "the demo's last word: every outcome as expected" '^demo: all [0-9]+ outcomes as expected$'
if grep -q UNEXPECTED "$tmp/out"; then no "no unexpected outcome" "$(grep UNEXPECTED "$tmp/out")"; else ok "no unexpected outcome"; fi
# Everything it started is gone (its temporary directory names every process it ran).
if pgrep -f "bmsgate-demo\." >/dev/null; then no "the demo left no process running" "$(pgrep -af 'bmsgate-demo\.')"; else ok "the demo left no process running"; fi
if ls -d /tmp/bmsgate-demo.* >/dev/null 2>&1 && [ -n "$(find /tmp -maxdepth 1 -name 'bmsgate-demo.*' -newer "$tmp" 2>/dev/null)" ]; then
	no "the demo removed its temporary directory"
else
	ok "the demo removed its temporary directory"
fi
echo "1..$n"
