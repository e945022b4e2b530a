#!/usr/bin/env bash
# The guard's side towards the devices: a device that is down (exception 0A, then recovery with
# back-off once it is up), a device too slow to answer (0B), and one device connection shared by
# many controllers at once (transaction ids remapped, requests serialised) on a simulator that
# accepts a single connection.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "gateway device path: $why"
	done_tests
	exit 0
fi
check "site PKI and audit key" gw_pki
down_port=$(free_port)
start_sim slow --slow-ms 1500 || no "slow simulator starts" "$(cat "$tmp/slow.log")"
start_sim one --max-clients 1 -v || no "single-connection simulator starts" "$(cat "$tmp/one.log")"
cat >"$tmp/site.policy" <<POL
device down modbus 127.0.0.1 port $down_port unit 1
device slow modbus 127.0.0.1 port $slow_port unit 2
device one modbus 127.0.0.1 port $one_port unit 3
role operators {
  certificate-role operator
}
allow operators read down
allow operators read slow
allow operators read one
allow operators write one
POL
chmod 600 "$tmp/site.policy"
g_tls=$(free_port)
cat >"$tmp/g.conf" <<CONF
listen tls 127.0.0.1:$g_tls
certificate $tmp/pki/issued/guard.crt
key $tmp/pki/issued/guard.key
ca $tmp/pki/ca.crt
policy $tmp/site.policy
device down {
  address 127.0.0.1:$down_port
  units 1
  connect-timeout 1s
  backoff 300ms
}
device slow {
  address 127.0.0.1:$slow_port
  units 2
  response-timeout 300ms
}
device one {
  address 127.0.0.1:$one_port
  units 3
  connections 1
  max-in-flight 1
  connect-delay 50ms
}
audit {
  file $tmp/g.audit.jsonl
  key $tmp/audit.key
  sync 5ms
}
CONF
A=$tmp/g.audit.jsonl
if ! start_guard g; then
	no "guard starts" "$(cat "$tmp/g.log")"
	done_tests
	exit 1
fi
gw_tunnel_conf t "$g_tls" operator1
start_tunnel t || no "tunnel starts" "$(cat "$tmp/t.log")"

# device down: the gateway's own exception 0A, at once
MBC_OPTS="--unit 1" expect "device down: exception 0A (gateway path unavailable)" "exception 0x0a" mbc "$t_port" read 100 1
MBC_OPTS="--unit 1" expect "device still down, inside the back-off: 0A again" "exception 0x0a" mbc "$t_port" read 100 1
check "guard log says why and when it retries" grep -q "device down (127.0.0.1:$down_port): cannot connect: connection refused; next try in" "$tmp/g.log"
check "audit: the result is device_down" sh -c "jq -c 'select(.kind==\"result\" and .result==\"device_down\")' $A | grep -q ."
# the device comes up: after the back-off the guard connects again
"$B" sim modbus --listen "127.0.0.1:$down_port" >"$tmp/late.log" 2>&1 &
pids+=("$!")
wait_port "$down_port" 5
got=""
for _ in $(seq 1 100); do
	got=$(MBC_OPTS="--unit 1" mbc "$t_port" read 100 1)
	[ "$got" = "ok 180" ] && break
	sleep 0.05
done
if [ "$got" = "ok 180" ]; then ok "device back up: the guard reconnects after its back-off"; else no "device back up: the guard reconnects after its back-off" "$got"; fi

# slow device: no answer within response-timeout gives 0B; the connection to the controller stays
MBC_OPTS="--unit 2" expect "slow device: exception 0B (target failed to respond)" "exception 0x0b" mbc "$t_port" read 100 1
check "audit: the result is timeout" sh -c "jq -c 'select(.kind==\"result\" and .result==\"timeout\")' $A | grep -q ."

# one device connection (the simulator accepts only one), eight controllers at once
for i in 1 2 3 4 5 6 7 8; do
	MBC_OPTS="--unit 3 --repeat 40" mbc "$t_port" read 100 1 >"$tmp/c$i.out" &
	cpids+=("$!")
done
bad=0
for i in 1 2 3 4 5 6 7 8; do
	wait "${cpids[$((i - 1))]}" || bad=1
	[ "$(cat "$tmp/c$i.out")" = "ok 180 x40" ] || bad=1
done
if [ $bad -eq 0 ]; then
	ok "8 controllers x 40 reads share the device's single connection: every answer right"
else
	no "8 controllers x 40 reads share the device's single connection: every answer right" "$(cat "$tmp"/c*.out | sort | uniq -c)"
fi
check "the simulator never had to refuse a second connection" sh -c "! grep -q 'connection refused' $tmp/one.log"
MBC_OPTS="--unit 3" expect "writes go through the shared connection too" "ok" mbc "$t_port" write 100 205
MBC_OPTS="--unit 3" expect "and read back" "ok 205" mbc "$t_port" read 100 1
done_tests
