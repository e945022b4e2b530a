#!/usr/bin/env bash
# pcaps/make-loopback.sh: captures of real Modbus/TCP and BACnet/IP traffic between real peers on
# loopback, recorded by dumpcap. Writes pcaps/loopback-lo.pcapng (interface lo: Ethernet link type)
# and pcaps/loopback-any.pcapng (interface any: Linux cooked v2), the same conversation in both
# (the timestamps and ports differ from run to run; the PDUs do not).
#   Modbus/TCP on port 15020: server `bmsgate sim modbus` (libmodbus, the air-handler model);
#     clients mbpoll (FC 3, 4, 1, 2, 6, 16, 5, 15, an out-of-range read answered with exception 02)
#     and python3-pymodbus (FC 3, 23, 22, 43/14, 8/00 and a pipelined burst on one connection).
#   BACnet/IP on UDP 47808/47809: pcaps/tools/bacnet-loopback.js, a device and a workstation made
#     with the npm package node-bacnet (installed here into build/npm, never committed).
# Needs root (capture), dumpcap, mbpoll, python3-pymodbus, node + npm; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
W=build/loopback
rm -rf "$W" && mkdir -p "$W"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { # wait_for FILE PATTERN: until FILE holds PATTERN (10 s at most)
	for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "make-loopback: timed out waiting for '$2' in $1" >&2
	cat "$1" >&2
	return 1
}

if [ ! -d build/npm/node_modules/node-bacnet ]; then
	mkdir -p build/npm
	npm install --no-audit --no-fund --prefix build/npm node-bacnet@0.2.4 >/dev/null
fi
make -s build/bmsgate

filter="tcp port 15020 or udp port 47808 or udp port 47809"
for ifc in lo any; do
	linktype=()
	[ "$ifc" = any ] && linktype=(-y LINUX_SLL2)
	dumpcap -q -i "$ifc" "${linktype[@]}" -f "$filter" -w "$W/$ifc.pcapng" 2>"$W/dumpcap-$ifc.log" &
	pids+=($!)
	wait_for "$W/dumpcap-$ifc.log" "Capturing on"
done

build/bmsgate sim modbus --listen 127.0.0.1:15020 --model ahu --ready-file "$W/sim.ready" >"$W/sim.log" 2>&1 &
pids+=($!)
sim=$!
wait_for "$W/sim.ready" ":15020"

mb() { mbpoll -m tcp -p 15020 -a 1 -0 -1 -q "$@" >>"$W/mbpoll.log" 2>&1 || true; }
mb -t 4 -r 100 -c 4 127.0.0.1           # FC 3: the set-points
mb -t 3 -r 0 -c 5 127.0.0.1             # FC 4: temperatures
mb -t 0 -r 12 -c 4 127.0.0.1            # FC 1: commands
mb -t 1 -r 2 -c 3 127.0.0.1             # FC 2: status and alarms
mb -t 4 -r 100 127.0.0.1 195            # FC 6: supply air set-point 19.5 degC
mb -t 4 -r 101 127.0.0.1 65 20          # FC 16: fan speed and damper
mb -t 0 -r 12 127.0.0.1 1               # FC 5: fan on
mb -t 0 -r 13 127.0.0.1 0 1             # FC 15: heating off, cooling on
mb -t 4 -r 995 -c 10 127.0.0.1          # FC 3 beyond the map: exception 02

/usr/bin/python3 - <<'PY' >>"$W/pymodbus.log" 2>&1
import socket, struct
from pymodbus.client import ModbusTcpClient
from pymodbus.mei_message import ReadDeviceInformationRequest
c = ModbusTcpClient("127.0.0.1", port=15020)
c.connect()
c.read_holding_registers(100, 4, slave=1)
c.readwrite_registers(read_address=100, read_count=2, write_address=103, write_registers=[1], slave=1)
c.mask_write_register(address=103, and_mask=0x00F0, or_mask=0x0001, slave=1)
c.execute(ReadDeviceInformationRequest(read_code=1, object_id=0, slave=1))
c.diag_query_data(0x1234, slave=1)
c.close()
# Five requests written at once on one connection: pipelining, answered one by one.
s = socket.create_connection(("127.0.0.1", 15020))
burst = b"".join(struct.pack(">HHHBBHH", 700 + i, 0, 6, 1, 4, i, 2) for i in range(5))
s.sendall(burst)
got = b""
while len(got) < 5 * 13:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
s.close()
PY

(cd build/npm && NODE_PATH="$PWD/node_modules" node ../../pcaps/tools/bacnet-loopback.js device >../../"$W/bacnet-device.log" 2>&1) &
pids+=($!)
wait_for "$W/bacnet-device.log" "device listening"
(cd build/npm && NODE_PATH="$PWD/node_modules" node ../../pcaps/tools/bacnet-loopback.js client >../../"$W/bacnet-client.log" 2>&1)

kill "$sim"
# dumpcap writes what the kernel handed it a little later: wait until both files hold the last
# packet (the TimeSynchronization), not a fixed time.
for ifc in lo any; do
	for _ in $(seq 100); do
		build/bmsgate decode --count --bacnet-port 47808 --bacnet-port 47809 "$W/$ifc.pcapng" 2>/dev/null |
			grep -q "bacnet 17 " && break
		sleep 0.1
	done
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
cp "$W/lo.pcapng" pcaps/loopback-lo.pcapng
cp "$W/any.pcapng" pcaps/loopback-any.pcapng
for f in pcaps/loopback-lo.pcapng pcaps/loopback-any.pcapng; do
	echo "$f: $(build/bmsgate decode --count --modbus-port 15020 --bacnet-port 47808 --bacnet-port 47809 "$f" | head -1)"
done
