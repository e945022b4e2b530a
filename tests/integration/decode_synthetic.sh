#!/usr/bin/env bash
# tests/integration/decode_synthetic.sh: `bmsgate decode` on the synthetic captures of
# pcaps/synthetic (made by pcaps/make-synthetic.py, every PDU known): reassembly cases, each link
# type, VLAN + IPv6, fragments, pcapng, ports, JSON shape, and the exit statuses. Prints TAP.
set -u
cd "$(dirname "$0")/../.."
B=build/bmsgate
S=pcaps/synthetic
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { # check NAME EXPECTED ACTUAL
	if [ "$2" == "$3" ]; then ok "$1"; else nok "$1" "expected: $2" "actual:   $3"; fi
}

# Reassembly: split, pipelined, out of order, retransmitted, overlapping with other bytes, lost.
"$B" decode --json "$S/reasm.pcap" >"$T/reasm.json" 2>"$T/err"; rc=$?
check "reasm.pcap decodes (exit 0)" 0 "$rc"
check "reasm.pcap: every PDU once, in stream order, in the frame that completed it" \
	"4:request:1 5:response:1 7:request:2 8:response:2 9:request:3 9:request:4 10:response:3 10:response:4 12:request:5 13:request:6 15:request:7 17:request:8 19:request:10 20:response:5 20:response:6 20:response:7 20:response:8 20:response:10" \
	"$(jq -r '"\(.frame):\(.dir):\(.tid)"' "$T/reasm.json" | tr '\n' ' ' | sed 's/ $//')"
check "reasm.pcap: the first copy of an overlap wins (tid 7 keeps addr 7)" "7" \
	"$(jq -r 'select(.tid == 7 and .dir == "request") | .addr' "$T/reasm.json")"
check "reasm.pcap: differing overlap flagged on the next PDU (tid 8)" "tcp_overlap_differs" \
	"$(jq -r 'select(.anomalies | index("tcp_overlap_differs")) | "\(.anomalies | join(","))"' "$T/reasm.json")"
check "reasm.pcap: the lost segment is a gap flagged on tid 10, nothing else flagged" "10:tcp_gap" \
	"$(jq -r 'select(.anomalies | length > 0) | select(.tid != 8) | "\(.tid):\(.anomalies | join(","))"' "$T/reasm.json")"
check "reasm.pcap: no record is malformed" "0" "$(jq -s 'map(select(.malformed)) | length' "$T/reasm.json")"
"$B" decode --count "$S/reasm.pcap" >"$T/count"
check "reasm.pcap --count: 18 PDUs, 2 retransmissions, 2 buffered out of order (tid 5, tid 10), 1 differing overlap, 1 gap of 12 bytes" \
	"pdus 18 retransmitted 2 out_of_order 2 overlap_differs 1 gaps 1 gap_bytes 12" \
	"$(tr ' ' '\n' <"$T/count" | paste - - | grep -E '^(pdus|retransmitted|out_of_order|overlap_differs|gaps|gap_bytes)\b' | tr '\t' ' ' | tr '\n' ' ' | sed 's/ $//')"

# Link types: the same three PDUs (Modbus request + response, BACnet ReadProperty) through each.
want='request:31:31:2 response:31:-:- bacnet:12:8:1:85'
for f in sll.pcap sll2.pcap raw.pcap null.pcap loop.pcap; do
	got=$("$B" decode --json "$S/$f" | jq -r 'if .proto == "modbus" then "\(.dir):\(.tid):\(.addr // "-"):\(.qty // "-")" else "bacnet:\(.service):\(.object_type):\(.instance):\(.property)" end' | tr '\n' ' ' | sed 's/ $//')
	check "$f: link type decoded" "$want" "$got"
done
check "modbus.pcapng: pcapng read, microsecond timestamps" '1700000000.000250 1700000001.000250' \
	"$("$B" decode --json "$S/modbus.pcapng" | grep -oE '"ts":[0-9]+\.[0-9]{6},' | sed 's/"ts"://; s/,//' | tr '\n' ' ' | sed 's/ $//')"
check "vlan-ipv6.pcap: stacked VLAN tags and IPv6 extension headers, bracketed IPv6 flows" \
	'[fd00::1]:40001->[fd00::2]:502 [fd00::2]:502->[fd00::1]:40001 [fd00::1]:47808->[fd00::2]:47808' \
	"$("$B" decode --json "$S/vlan-ipv6.pcap" | jq -r .flow | tr '\n' ' ' | sed 's/ $//')"
check "ipfrag.pcap: fragments flagged and skipped, the whole datagram decoded" "1 ip_fragment 2" \
	"$("$B" decode --json "$S/ipfrag.pcap" | wc -l) $("$B" decode --count "$S/ipfrag.pcap" | grep -oE 'ip_fragment [0-9]+')"

# Ports: --modbus-port replaces the default 502.
check "--modbus-port 15020: port 502 is no longer Modbus" "0" "$("$B" decode --json --modbus-port 15020 "$S/reasm.pcap" | wc -l)"
check "--modbus-port 502 --modbus-port 15020: both" "18" "$("$B" decode --json --modbus-port 15020 --modbus-port 502 "$S/reasm.pcap" | wc -l)"
check "--bacnet-port 47809 alone: BACnet on 47808 not decoded" "2" "$("$B" decode --json --bacnet-port 47809 "$S/raw.pcap" | wc -l)"

# Limits are configurable and bind: with 20 bytes of buffer per flow nothing out of order fits.
"$B" decode --json --max-flow-bytes 20 "$S/reasm.pcap" >"$T/cap.json"
check "--max-flow-bytes 20: the dropped segment is flagged tcp_memcap on the next PDU (tid 6)" "6" \
	"$(jq -r 'select(.anomalies | index("tcp_memcap")) | .tid' "$T/cap.json")"
check "--max-flow-bytes 20: 2 segments dropped, nothing buffered" "memcap_drops 2 peak_buffered 0" \
	"$("$B" decode --count --max-flow-bytes 20 "$S/reasm.pcap" | grep -oE '(memcap_drops|peak_buffered) [0-9]+' | tr '\n' ' ' | sed 's/ $//')"
"$B" decode --max-flows 0 "$S/reasm.pcap" >/dev/null 2>&1; rc=$?
check "--max-flows 0: usage error" 1 "$rc"

# JSON shape: every record of every capture parses and carries the common keys.
bad=0
for f in "$S"/*; do
	"$B" decode --json "$f" >"$T/all.json" || bad=1
	jq -e 'has("ts") and has("frame") and has("flow") and has("proto") and has("dir") and has("op") and has("malformed") and (.anomalies | type == "array")' "$T/all.json" >/dev/null || bad=1
	grep -vqE '^\{"ts":[0-9]+\.[0-9]{6},' "$T/all.json" && bad=1
done
check "every record is JSON with ts, frame, flow, proto, dir, op, malformed, anomalies" 0 "$bad"

# Exit statuses and messages.
"$B" decode "$T/nonexistent.pcap" >/dev/null 2>"$T/err"; rc=$?
check "missing file: exit 2, the name and libpcap's reason" "2 yes" \
	"$rc $(grep -q "nonexistent.pcap: .*No such file" "$T/err" && echo yes || cat "$T/err")"
echo "this is not a capture" >"$T/text.pcap"
"$B" decode "$T/text.pcap" >/dev/null 2>"$T/err"; rc=$?
check "not a capture: exit 2 with libpcap's reason" "2 yes" \
	"$rc $(grep -q "text.pcap: .*format" "$T/err" && echo yes || cat "$T/err")"
head -c 1000 "$S/reasm.pcap" >"$T/cut.pcap"
"$B" decode --json "$T/cut.pcap" >"$T/cut.json" 2>"$T/err"; rc=$?
check "capture cut short: exit 2, what was read is still printed" "2 yes yes" \
	"$rc $([ -s "$T/cut.json" ] && echo yes) $(grep -q "cut.pcap: after packet" "$T/err" && echo yes || cat "$T/err")"
python3 - "$T/usb.pcap" <<'PY'
import struct, sys
open(sys.argv[1], "wb").write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147))
PY
"$B" decode "$T/usb.pcap" >/dev/null 2>"$T/err"; rc=$?
check "unsupported link type: exit 2, named" "2 yes" "$rc $(grep -q "link type 147" "$T/err" && echo yes || cat "$T/err")"
"$B" decode --modbus-port 0 "$S/raw.pcap" >/dev/null 2>"$T/err"; rc=$?
check "bad port: usage error, exit 1, the value quoted" "1 yes" "$rc $(grep -q "'0'" "$T/err" && echo yes || cat "$T/err")"
"$B" decode >/dev/null 2>&1; rc=$?
check "no capture named: exit 1" 1 "$rc"

echo "1..$n"
exit $fail
