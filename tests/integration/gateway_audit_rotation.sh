#!/usr/bin/env bash
# The guard's audit block beyond file/key/sync: rotation by size, checkpoint frequency and a
# checkpoint copy in another directory, all verified by `audit verify`; and a file-size limit
# (ulimit -f) that makes the audit write fail (guard stays up, fails closed with 0A) instead
# of killing the guard with SIGXFSZ.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "audit rotation: $why"
	done_tests
	exit 0
fi
check "site PKI and audit key" gw_pki
start_sim sim || no "simulator starts" "$(cat "$tmp/sim.log")"
gw_policy "$sim_port"
mkdir -p "$tmp/secteam"
gw_guard_conf g "$sim_port" "" ""
sed -i "s|^  results all$|  results all\n  rotate-size 64k\n  checkpoint-records 5\n  checkpoint-interval 1s\n  checkpoint-copy $tmp/secteam/checkpoints.jsonl|" "$tmp/g.conf"
expect "guard -n accepts the rotation and checkpoint settings" "configuration OK" sh -c "'$B' guard -n -c '$tmp/g.conf' 2>&1"
if ! start_guard g; then
	no "guard starts" "$(cat "$tmp/g.log")"
	done_tests
	exit 1
fi
MBC_OPTS="--repeat 300" mbc "$g_plain" read 100 1 >"$tmp/load.out"
check "300 reads through the plain listener" grep -q "ok 180" "$tmp/load.out"
kill -TERM "$g_pid"
wait_gone "$g_pid" 10
A=$tmp/g.audit.jsonl
rotated=$(ls "$A".* 2>/dev/null | sort)
check "rotate-size 64k: the log was rotated" test -n "$rotated"
# rotation happens at a record boundary once the file has reached the size: one record over at most
all_small() { local f; for f in $rotated; do [ "$(stat -c %s "$f")" -lt $((64 * 1024 + 4096)) ] || return 1; done; }
check "rotate-size 64k: each rotated file stops just past 64k" all_small
C=$tmp/secteam/checkpoints.jsonl
check "checkpoint-copy: the copy file has checkpoints" test -s "$C"
# 300 reads with `results all` are ~600 records: with one checkpoint per 5 records, far more than
# the library default (one per 1000 records or 10 s) would give
ncp=$(wc -l <"$C")
check "checkpoint-records 5: many checkpoints ($ncp)" test "$ncp" -ge 50
# shellcheck disable=SC2086
check "audit verify over the rotated files with the checkpoint copy" "$B" audit verify $rotated "$A" --key "$tmp/audit.pub" --checkpoints "$C"

# SIGXFSZ: a file-size limit of 16 KiB (ulimit -f counts 1024-byte blocks), no rotation. The audit
# log hits it first (EFBIG: fail closed); then the refusals logged on stderr, redirected to a file,
# hit it too, and only an ignored SIGXFSZ keeps the guard alive.
gw_guard_conf x "$sim_port" "" ""
(ulimit -f 16 && exec "$B" guard -c "$tmp/x.conf") >>"$tmp/x.log" 2>&1 &
x_pid=$!
pids+=("$x_pid")
wait_log "$tmp/x.log" ": ready$" 10
MBC_OPTS="--repeat 400" mbc "$x_plain" read 100 1 >"$tmp/x.out"
check "file-size limit: the diagnostics file reached it too" test "$(stat -c %s "$tmp/x.log")" -ge 16384
check "file-size limit reached: the guard is still running (SIGXFSZ ignored)" kill -0 "$x_pid"
expect "file-size limit reached: fail closed answers 0A" "exception 0x0a" mbc "$x_plain" read 100 1
check "file-size limit reached: the log says why" grep -q -i "file too large" "$tmp/x.log"
kill -TERM "$x_pid" 2>/dev/null
wait_gone "$x_pid" 10
done_tests
