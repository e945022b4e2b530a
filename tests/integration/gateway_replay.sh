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
check "replay on the loopback capture counts its BACnet requests, not replays them (47808 by default)" grep -qx "bmsgate replay: 10 BACnet/IP requests not replayed: the guard inspects Modbus/TCP only" "$tmp/none.err"
check "replay with no request says which port it looked on" grep -qx "bmsgate replay: no Modbus/TCP request on TCP port 502; is the device on another port (--modbus-port N)?" "$tmp/none.err"

# The registered ports by default, as for decode (issue 11): a port-502 capture needs no option.
cat >"$tmp/s.policy" <<'POL'
device plc modbus 10.0.0.2 unit 1 {
}
role plant {
  address 10.0.0.0/8
}
allow plant read plc
POL
chmod 600 "$tmp/s.policy"
"$B" replay --policy "$tmp/s.policy" pcaps/synthetic/modbus.pcapng >"$tmp/s.out" 2>"$tmp/s.err"
check "replay of a port-502 capture without --modbus-port finds its request" grep -qx "bmsgate replay: 1 requests: 1 forwarded (1 allowed, 0 monitor-deny), 0 answered by the gateway (0 denied), 0 would close the connection" "$tmp/s.err"
check "replay of a port-502 capture: the read is allowed by its rule" grep -Eq "10.0.0.1:40002 -> 10.0.0.2:502 unit 1 fc 3 read +allow +forward .*s.policy:6" "$tmp/s.out"
"$B" replay --policy "$tmp/s.policy" --modbus-port 503 pcaps/synthetic/modbus.pcapng >/dev/null 2>"$tmp/s503.err"
check "replay --modbus-port 503 replaces the default 502 (0 requests)" grep -q "^bmsgate replay: 0 requests" "$tmp/s503.err"
"$B" replay --policy "$tmp/s.policy" pcaps/synthetic/sll.pcap >/dev/null 2>"$tmp/sll.err"
check "replay: the BACnet ReadProperty on 47808 is counted by default" grep -qx "bmsgate replay: 1 BACnet/IP requests not replayed: the guard inspects Modbus/TCP only" "$tmp/sll.err"
"$B" replay --policy "$tmp/s.policy" --bacnet-port 47809 pcaps/synthetic/sll.pcap >/dev/null 2>"$tmp/sll2.err"
check "replay --bacnet-port 47809 replaces the default 47808" sh -c "! grep -q BACnet $tmp/sll2.err && grep -q '^bmsgate replay: 1 requests' $tmp/sll2.err"
"$B" replay --policy "$tmp/s.policy" --modbus-port 0 pcaps/synthetic/sll.pcap >/dev/null 2>"$tmp/p0.err"
check "replay --modbus-port 0 is a usage error that quotes the value" sh -c "test $? -eq 1 && grep -q \"'0' is not a port\" $tmp/p0.err"
# --role and --subject are held to the guard's limits (64 and 255 bytes), never cut into another identity
r64=$(printf 'r%.0s' $(seq 64)); r65=${r64}x
"$B" replay --policy "$tmp/s.policy" --role "$r64" pcaps/synthetic/modbus.pcapng >/dev/null 2>"$tmp/r64.err"
check "replay --role of 64 bytes (the guard's limit) runs" sh -c "test $? -eq 0 && grep -q '^bmsgate replay: 1 requests' $tmp/r64.err"
"$B" replay --policy "$tmp/s.policy" --role "$r65" pcaps/synthetic/modbus.pcapng >/dev/null 2>"$tmp/r65.err"
check "replay --role of 65 bytes is refused, not cut" sh -c "test $? -eq 1 && grep -q 'is 65 bytes, longer than 64' $tmp/r65.err"
s255="CN=$(printf 's%.0s' $(seq 252))"; s256=${s255}x
"$B" replay --policy "$tmp/s.policy" --subject "$s255" pcaps/synthetic/modbus.pcapng >/dev/null 2>"$tmp/s255.err"
check "replay --subject of 255 bytes runs" test $? -eq 0
"$B" replay --policy "$tmp/s.policy" --subject "$s256" pcaps/synthetic/modbus.pcapng >/dev/null 2>"$tmp/s256.err"
check "replay --subject of 256 bytes is refused, not cut" sh -c "test $? -eq 1 && grep -q 'is 256 bytes, longer than 255' $tmp/s256.err"
# A public capture on port 502: replay sees every request decode sees, with no option.
pub=../shared/pcaps-public/zeek-zeek/modbusSmall.pcap
if [ -r "$pub" ]; then
	want=$("$B" decode --json "$pub" | jq -c 'select(.proto=="modbus" and .dir=="request")' | wc -l)
	"$B" replay --policy "$tmp/s.policy" "$pub" >/dev/null 2>"$tmp/pub.err"
	check "replay of $pub finds the $want requests decode finds" sh -c "test $want -gt 0 && grep -q '^bmsgate replay: $want requests:' $tmp/pub.err"
else
	skip "replay of a public port-502 capture: $pub is not there (../shared/pcaps-public beside the clone)"
fi
"$B" replay --policy "$tmp/nonexistent.policy" "$cap" >/dev/null 2>&1
check "replay with an unreadable policy exits 2" test $? -eq 2
done_tests
