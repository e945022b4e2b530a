#!/usr/bin/env bash
# Running the guard: `-n` with precise errors, policy reload under load without a dropped request,
# a broken reload that keeps the running policy, kill -9 and restart with the tunnel reconnecting,
# SIGTERM draining a request in flight, the legacy plain listener, and the connection limits.
. "$(dirname "$0")/lib/gw.sh"

# -n on a broken file needs no engine: every error, file:line, in one run
cat >"$tmp/broken.conf" <<'CONF'
listen tls 127.0.0.1:802
listen plain 127.0.0.1:502
certficate guard.crt
device ahu {
  address 127.0.0.1:502
  response-timeout 3
}
CONF
"$B" guard -n -c "$tmp/broken.conf" >"$tmp/n.out" 2>&1
rc=$?
check "guard -n on a broken file exits 1" test $rc -eq 1
check "guard -n: plain listener without allow" grep -qx "$tmp/broken.conf:2:1: error: listen plain: expected 'listen plain ADDRESS:PORT allow NETWORK...' (a plain listener must say who may use it)" "$tmp/n.out"
check "guard -n: did-you-mean for a misspelt keyword" grep -qx "$tmp/broken.conf:3:1: error: unknown keyword 'certficate' in top level (did you mean 'certificate'?)" "$tmp/n.out"
check "guard -n: a duration without a unit" grep -qx "$tmp/broken.conf:6:20: error: response-timeout: '3' needs a unit (ms, s, m or h)" "$tmp/n.out"
# for a person: the source line, and a caret under the token
check "guard -n: the source line and a caret under the value" sh -c "grep -A2 -x '$tmp/broken.conf:6:20: error: response-timeout: .*' '$tmp/n.out' | tail -n 2 | tr '\n' '|' | grep -qx '  response-timeout 3|                   ^|'"
check "guard -n: what is missing" grep -qx "$tmp/broken.conf: error: a TLS listener needs 'certificate FILE'" "$tmp/n.out"
# a start whose stderr is no terminal (a service manager's log): one line per error, no carets
"$B" guard -c "$tmp/broken.conf" >"$tmp/start.out" 2>&1 </dev/null
rc=$?
check "guard start on a broken file exits 1" test $rc -eq 1
check "guard start, not at a terminal: the same errors" grep -qx "$tmp/broken.conf:6:20: error: response-timeout: '3' needs a unit (ms, s, m or h)" "$tmp/start.out"
check "guard start, not at a terminal: one line each, no source lines" sh -c "test \$(wc -l <'$tmp/start.out') -eq \$(grep -c ': error: ' '$tmp/start.out') && ! grep -q '\\^' '$tmp/start.out'"
check "guard -n: never says OK on errors" sh -c "! grep -q 'configuration OK' $tmp/n.out"

if why=$(gw_engine_missing); then
	skip "gateway operations: $why"
	done_tests
	exit 0
fi
check "site PKI and audit key" gw_pki
start_sim sim || no "simulator starts" "$(cat "$tmp/sim.log")"
start_sim slow --slow-ms 700 || no "slow simulator starts" "$(cat "$tmp/slow.log")"
gw_policy "$sim_port" "device slowahu modbus 127.0.0.1 port $slow_port unit 5
allow operators read slowahu"
gw_guard_conf g "$sim_port" "" ""
cat >>"$tmp/g.conf" <<CONF
device slowahu {
  address 127.0.0.1:$slow_port
  units 5
  response-timeout 3s
}
limits {
  connections-per-source 40
}
CONF
# two limits blocks are an error: fold ours into the one gw_guard_conf wrote
$PY - "$tmp/g.conf" <<'PYEOF'
import sys, re
p = sys.argv[1]
s = open(p).read()
blocks = re.findall(r"limits \{\n(.*?)\}\n", s, re.S)
s = re.sub(r"limits \{\n.*?\}\n", "", s, flags=re.S)
s += "limits {\n" + "".join(blocks) + "  idle-timeout 30s\n}\n"
open(p, "w").write(s)
PYEOF
# quicker than the defaults of gw_guard_conf: group commit every 5 ms, 1 s to finish a handshake
sed -i 's/^  sync always$/  sync 5ms/; s/^  handshake-timeout 3s$/  handshake-timeout 1s/' "$tmp/g.conf"
expect "guard -n says configuration OK" "configuration OK" sh -c "'$B' guard -n -c '$tmp/g.conf' 2>/dev/null"
if ! start_guard g; then
	no "guard starts" "$(cat "$tmp/g.log")"
	done_tests
	exit 1
fi
A=$tmp/g.audit.jsonl
gw_tunnel_conf t "$g_tls" operator1
start_tunnel t || no "tunnel starts" "$(cat "$tmp/t.log")"
expect "reads through the tunnel" "ok 180" mbc "$t_port" read 100 1

# policy reload under load: 3000 reads on one connection while the guard reloads five times
MBC_OPTS="--repeat 3000" mbc "$t_port" read 100 1 >"$tmp/load.out" &
load=$!
wait_log "$A" '"kind":"result"' 5
for i in 1 2 3 4 5; do
	kill -HUP "$g_pid"
	wait_log "$tmp/g.log" "policy reloaded" 5
	c=$(count_log "$tmp/g.log" "policy reloaded")
	for _ in $(seq 1 250); do [ "$c" -ge "$i" ] && break; sleep 0.02; c=$(count_log "$tmp/g.log" "policy reloaded"); done
done
wait "$load"
expect "5 reloads under load: all 3000 reads answered" "ok 180 x3000" cat "$tmp/load.out"
check "5 reloads logged" test "$(count_log "$tmp/g.log" "policy reloaded")" -ge 5
check "audit: each reload recorded with the policy hash" sh -c "test \$(jq -c 'select(.kind==\"policy_loaded\" and (.hash|length)==64)' $A | wc -l) -ge 6"

# a broken policy: the reload fails, says why, and the running policy stays
cp "$tmp/site.policy" "$tmp/site.policy.good"
printf 'allow operators wrtie ahu\n' >>"$tmp/site.policy"
kill -HUP "$g_pid"
check "broken policy: the reload fails and says so" wait_log "$tmp/g.log" "policy reload failed: keeping the running policy" 5
check "broken policy: the error names file and line" grep -q "site.policy:[0-9]*:[0-9]*: error" "$tmp/g.log"
expect "broken policy: the old policy still allows reads" "ok 180" mbc "$t_port" read 100 1
# a stricter policy: reads by operators no longer allowed, on the connection that is already open
cp "$tmp/site.policy.good" "$tmp/site.policy"
sed -i 's/^allow operators read ahu$/deny operators read ahu/' "$tmp/site.policy"
before=$(count_log "$tmp/g.log" "policy reloaded")
kill -HUP "$g_pid"
for _ in $(seq 1 250); do [ "$(count_log "$tmp/g.log" "policy reloaded")" -gt "$before" ] && break; sleep 0.02; done
expect "stricter policy takes effect at once: exception 01" "exception 0x01" mbc "$t_port" read 100 1
cp "$tmp/site.policy.good" "$tmp/site.policy"
kill -HUP "$g_pid"
for _ in $(seq 1 250); do [ "$(count_log "$tmp/g.log" "policy reloaded")" -gt "$((before + 1))" ] && break; sleep 0.02; done

# kill -9 and restart: the tunnel dials the new guard
kill -9 "$g_pid"
wait_gone "$g_pid" 5
got=$(mbc "$t_port" read 100 1)
case "$got" in
"ok 180") no "with the guard dead, nothing answers" "$got" ;;
*) ok "with the guard dead, the tunnel does not pretend ($got)" ;;
esac
start_guard g || no "guard restarts" "$(cat "$tmp/g.log")"
got=""
for _ in $(seq 1 50); do
	got=$(mbc "$t_port" read 100 1)
	[ "$got" = "ok 180" ] && break
	sleep 0.05
done
if [ "$got" = "ok 180" ]; then ok "after the restart the tunnel reconnects and reads work"; else no "after the restart the tunnel reconnects and reads work" "$got" "$(tail -5 "$tmp/t.log")"; fi

# legacy plain listener: identity = source address
expect "legacy listener: a plain client from an allowed address reads" "ok 180" mbc "$g_plain" read 100 1
expect "legacy listener: the address role may not write: exception 01" "exception 0x01" mbc "$g_plain" write 100 200
check "audit: legacy peer recorded by address, not authenticated" sh -c "jq -c 'select(.kind==\"decision\") | .peer' $A | grep -q '\"authenticated\":false'"

# pre-handshake limit: a TCP peer that never starts TLS is dropped after handshake-timeout (1s here)
$PY - "$g_tls" >"$tmp/hs.out" 2>&1 <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t = time.time()
s.settimeout(6)
try:
    b = s.recv(10)
except OSError as e:
    b = b""
print("closed after %.1f s" % (time.time() - t) if b == b"" else "got %r" % b)
PYEOF
check "a peer that never starts TLS is closed after the handshake timeout" grep -q "closed after 1\." "$tmp/hs.out"
check "audit: handshake timeout recorded" wait_log "$A" '"kind":"conn_refused".*handshake timeout' 3

# SIGTERM drains: a request in flight to a slow device is answered before the guard stops
MBC_OPTS="--unit 5" mbc "$t_port" read 100 1 >"$tmp/drain.out" &
drainer=$!
wait_log "$A" '"kind":"decision".*"unit":5' 5
kill -TERM "$g_pid"
wait "$drainer"
expect "SIGTERM: the request in flight to the slow device is still answered" "ok 180" cat "$tmp/drain.out"
check "SIGTERM: the guard exits" wait_gone "$g_pid" 10
check "SIGTERM: the audit trail ends with a stop record" sh -c "tail -n 3 $A | grep -q '\"kind\":\"stop\"'"
check "diagnostics stay out of the audit trail" sh -c "! grep -q 'bmsgate guard' $A"
done_tests
