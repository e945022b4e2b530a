#!/usr/bin/env bash
# `bmsgate replay`: the project's own loopback capture (mbpoll and pymodbus talking to the
# simulated air handler, pcaps/README.md) through the guard's inspect step, with a policy that
# lets the plant LAN read the air handler and write its supply air setpoint only.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "replay: $why"
	done_tests
	exit 0
fi
cap=pcaps/loopback-lo.pcapng
cat >"$tmp/p.policy" <<'POL'
device ahu modbus 127.0.0.1 port 15020 unit 1 {
  point supply_air_setpoint holding 100 scale 0.1 unit degC range 15..30
}
role plant {
  address 127.0.0.0/8
}
role operators {
  certificate-role operator
}
allow plant read ahu
allow plant write ahu.supply_air_setpoint
allow operators management ahu
POL
chmod 600 "$tmp/p.policy"
"$B" replay --policy "$tmp/p.policy" --modbus-port 15020 "$cap" >"$tmp/r.out" 2>"$tmp/r.err"
check "replay runs" test $? -eq 0
check "replay: every request of the capture, summarised" grep -qx "bmsgate replay: 19 requests: 12 forwarded (12 allowed, 0 monitor-deny), 7 answered by the gateway (7 denied), 0 would close the connection" "$tmp/r.err"
check "replay: the setpoint write is allowed by its rule" grep -Eq "fc 6 write +allow +forward .*p.policy:11: allow plant write ahu.supply_air_setpoint" "$tmp/r.out"
check "replay: the FC 16 write to holding 101-102 is denied with exception 01" grep -Eq "fc 16 write +deny +answer 0x01 .*holding 101-102" "$tmp/r.out"
check "replay: diagnostics (FC 8) denied without a role" grep -Eq "fc 8 management +deny +answer 0x01" "$tmp/r.out"
"$B" replay --policy "$tmp/p.policy" --modbus-port 15020 --role operator --json "$cap" >"$tmp/j.out" 2>/dev/null
check "replay --role operator: the certificate role allows diagnostics" sh -c "jq -c 'select(.fc==8)' $tmp/j.out | grep -q '\"decision\":\"allow\",\"action\":\"forward\",\"rule\":\"[^\"]*p.policy:12\"'"
check "replay --json: one JSON object per request" test "$(jq -c . "$tmp/j.out" | wc -l)" -eq 19
"$B" replay --policy "$tmp/p.policy" "$cap" >"$tmp/none.out" 2>"$tmp/none.err"
check "replay without --modbus-port 15020 finds no Modbus on 502" grep -q "0 requests" "$tmp/none.err"
"$B" replay --policy "$tmp/nonexistent.policy" "$cap" >/dev/null 2>&1
check "replay with an unreadable policy exits 2" test $? -eq 2
done_tests
