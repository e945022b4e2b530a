#!/usr/bin/env bash
# `bmsgate replay`: the project's own loopback capture (mbpoll and pymodbus talking to the
# simulated air handler; node-bacnet's workstation and device, pcaps/README.md) through the
# guard's inspect step (engine_inspect), with a policy that lets the plant LAN read the air
# handler and write its supply air setpoint only, and one for the BACnet VAV box.
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
check "replay --json: one JSON object per request, Modbus and BACnet" sh -c "test \"$(jq -c 'select(.proto==null and .fc!=null)' "$tmp/j.out" | wc -l) $(jq -c 'select(.proto=="bacnet")' "$tmp/j.out" | wc -l) $(wc -l <"$tmp/j.out")\" = '19 10 29'"
"$B" replay --policy "$tmp/p.policy" "$cap" >"$tmp/none.out" 2>"$tmp/none.err"
check "replay without --modbus-port 15020 finds no Modbus on 502" grep -q "0 requests" "$tmp/none.err"
check "replay on the loopback capture replays its BACnet requests (47808 by default): none of the policy's devices, all refused" grep -qx "bmsgate replay: 10 BACnet/IP requests: 0 forwarded (0 allowed, 0 monitor-deny), 7 answered by the gateway (7 denied), 3 dropped unanswered, 0 would close the connection" "$tmp/none.err"
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
check "replay: the BACnet ReadProperty on 47808 is replayed by default (no BACnet device in the policy: denied)" grep -qx "bmsgate replay: 1 BACnet/IP requests: 0 forwarded (0 allowed, 0 monitor-deny), 1 answered by the gateway (1 denied), 0 dropped unanswered, 0 would close the connection" "$tmp/sll.err"
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
# BACnet through the same inspect step (the node-bacnet workstation and device of the loopback
# capture): what the policy allows is forwarded; a refused confirmed request gets an Error PDU of
# class security naming what was refused; a refused unconfirmed one is dropped.
cat >"$tmp/b.policy" <<'POL'
device vav bacnet 127.0.0.3:47808 instance 1201 {
  point sp analog-value 7
}
role plant {
  address 127.0.0.0/8
}
allow plant read vav
allow plant write vav.sp
POL
chmod 600 "$tmp/b.policy"
"$B" replay --policy "$tmp/b.policy" --json "$cap" >"$tmp/b.out" 2>"$tmp/b.err"
check "replay of BACnet: every request, summarised" grep -qx "bmsgate replay: 10 BACnet/IP requests: 4 forwarded (4 allowed, 0 monitor-deny), 3 answered by the gateway (3 denied), 3 dropped unanswered, 0 would close the connection" "$tmp/b.err"
bn() { jq -r "select(.frame==$1) | [.service,.decision,.action,(.answer // \"-\"),(.rule // \"-\")] | join(\" \")" "$tmp/b.out"; }
check "replay of BACnet: the ReadProperty is allowed by its rule" sh -c "test \"$(bn 130)\" = \"readProperty allow forward - $tmp/b.policy:7\""
check "replay of BACnet: the WriteProperty to vav.sp is allowed by its rule" sh -c "test \"$(bn 135)\" = \"writeProperty allow forward - $tmp/b.policy:8\""
check "replay of BACnet: the WriteProperty to binary-output 2 is denied with write-access-denied" sh -c "test \"$(bn 137)\" = \"writeProperty deny answer error write-access-denied -\""
check "replay of BACnet: DeviceCommunicationControl is denied with service-request-denied" sh -c "test \"$(bn 141)\" = \"deviceCommunicationControl deny answer error service-request-denied -\""
check "replay of BACnet: the unconfirmed TimeSynchronization is dropped, not answered" sh -c "test \"$(bn 145)\" = \"timeSynchronization deny drop - -\""
check "replay of BACnet: the I-Am to the workstation (no device there) is dropped" sh -c "test \"$(bn 131)\" = \"i-Am deny drop - -\""
"$B" replay --policy "$tmp/b.policy" "$cap" >"$tmp/bt.out" 2>/dev/null
check "replay of BACnet, text: the denied write names its object and answer" grep -Eq "^ +137 127.0.0.2:47809 -> 127.0.0.3:47808 bacnet writeProperty write +deny +answer error write-access-denied - *: no rule allows role plant to write binary-output 2" "$tmp/bt.out"
# Public BACnet captures: replay sees every request decode sees, and with no BACnet device in
# the policy every confirmed request gets an Error of class security, every unconfirmed one is dropped.
for pub in ../shared/pcaps-public/cisagov-icsnpp-bacnet/bacnet_services.pcap ../shared/pcaps-public/ntop-nDPI/bacnet.pcap; do
	if [ ! -r "$pub" ]; then
		skip "replay of the public BACnet capture $pub: not there (../shared/pcaps-public beside the clone)"
		continue
	fi
	want=$("$B" decode --json "$pub" | jq -c 'select(.proto=="bacnet" and .dir=="request")' | wc -l)
	"$B" replay --policy "$tmp/s.policy" --json "$pub" >"$tmp/pb.out" 2>"$tmp/pb.err"
	check "replay of $pub finds the $want BACnet requests decode finds" sh -c "test $want -gt 0 && grep -q '^bmsgate replay: $want BACnet/IP requests:' $tmp/pb.err"
	bad=$(jq -c 'select(.decision=="deny" and .op=="read" and .action=="answer" and .answer!="error read-access-denied")' "$tmp/pb.out" | wc -l)
	reads=$(jq -c 'select(.decision=="deny" and .service=="readProperty" and .answer=="error read-access-denied")' "$tmp/pb.out" | wc -l)
	check "replay of $pub: denied ReadProperty requests ($reads) all answered read-access-denied" sh -c "test $reads -gt 0 && test $bad -eq 0"
	unconf=$(jq -c 'select(.invoke_id==null and .decision!="malformed" and .action!="drop")' "$tmp/pb.out" | wc -l)
	check "replay of $pub: no request without an invoke id is answered or forwarded" test "$unconf" -eq 0
	fwd=$(jq -c 'select(.action=="forward")' "$tmp/pb.out" | wc -l)
	check "replay of $pub: nothing forwarded to a device the policy does not declare" test "$fwd" -eq 0
done
"$B" replay --policy "$tmp/nonexistent.policy" "$cap" >/dev/null 2>&1
check "replay with an unreadable policy exits 2" test $? -eq 2
done_tests
