#!/usr/bin/env bash
# `bmsgate sim modbus` against clients nobody here wrote: mbpoll and python3-pymodbus read and
# write the air-handler model, several at once, in both serving loops; limits and SIGTERM.
# The shared gateway-test set-up: TAP helpers, cleanup of started processes, start_sim.
. "$(dirname "$0")/lib/gw.sh"

mb() { timeout 10 mbpoll -m tcp -a 1 -0 -1 -q "$@"; }
# mbpoll prints "[ADDR]: <tab>VALUE"
mb_value() { mb "$@" | sed -n 's/^\[[0-9]*\]:[[:space:]]*\(-\{0,1\}[0-9]*\).*/\1/p' | head -1; }

if ! start_sim s; then
	no "simulator starts and writes its ready file" "$(cat "$tmp/s.log")"
	echo "1..$n"
	exit 1
fi
ok "simulator starts and writes its ready file"
check "ready line names the port" grep -q "listening on 127.0.0.1:$s_port" "$tmp/s.log"
P=$s_port

check "mbpoll reads the supply air setpoint (holding 100 = 180)" test "$(mb_value -p "$P" -t 4 -r 100 127.0.0.1)" = 180
check "mbpoll writes the setpoint" mb -p "$P" -t 4 -r 100 127.0.0.1 215
check "mbpoll reads the written setpoint back" test "$(mb_value -p "$P" -t 4 -r 100 127.0.0.1)" = 215
check "mbpoll switches the fan on (coil 12, fan_enable)" mb -p "$P" -t 0 -r 12 127.0.0.1 1
check "mbpoll reads the outside air temperature (input 2 = 85)" test "$(mb_value -p "$P" -t 3 -r 2 127.0.0.1)" = 85

cat >"$tmp/client.py" <<'PYEOF'
import struct, sys, time, threading
from pymodbus.client import ModbusTcpClient
from pymodbus.diag_message import ReturnQueryDataRequest
from pymodbus.pdu import ExceptionResponse

port = int(sys.argv[1])
n = 0
def result(ok, name, detail=""):
    global n
    n += 1
    print(("ok" if ok else "not ok") + " %d - pymodbus: %s" % (n, name))
    if not ok and detail:
        print("#   " + str(detail))

c = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
result(c.connect(), "connects")
rr = c.read_input_registers(0, 5, slave=1)
result(not rr.isError() and rr.registers[1] == 220 and rr.registers[2] == 85, "reads input registers 0..4", rr)
# The fan was switched on by mbpoll: status (discrete 0) follows within about a second,
# and supply air drifts from 21.0 toward the 21.5 setpoint.
deadline = time.time() + 5
fan = False
while time.time() < deadline and not fan:
    d = c.read_discrete_inputs(0, 5, slave=1)
    fan = not d.isError() and d.bits[2]
    if not fan:
        time.sleep(0.1)
result(fan, "fan status follows the fan command")
rr = c.read_input_registers(3, 1, slave=1)
result(not rr.isError() and rr.registers[0] > 0, "fan speed feedback rises", rr)
rr = c.read_coils(12, 4, slave=1)
result(not rr.isError() and rr.bits[0] and not rr.bits[1], "reads coils 12-15 (fan on, heating off)", rr)
# supply_air_temp as the example policy declares it: float32 at input 30-31, high word first.
rr = c.read_input_registers(0, 32, slave=1)
if not rr.isError():
    f = struct.unpack(">f", struct.pack(">HH", rr.registers[30], rr.registers[31]))[0]
    result(abs(f * 10 - rr.registers[0]) <= 1 and 20.0 < f < 22.0, "float32 supply air temp at input 30-31 agrees with input 0 (%.2f)" % f, rr.registers[:5])
else:
    result(False, "float32 supply air temp at input 30-31", rr)
w = c.write_registers(101, [75, 30], slave=1)
rr = c.read_holding_registers(100, 4, slave=1)
result(not w.isError() and not rr.isError() and rr.registers == [215, 75, 30, 1], "write multiple registers, read back", rr)
rr = c.read_holding_registers(999, 2, slave=1)
result(isinstance(rr, ExceptionResponse) and rr.exception_code == 2, "past the table: exception 02", rr)
rr = c.execute(ReturnQueryDataRequest(0x1234, unit=1))
result(isinstance(rr, ExceptionResponse) and rr.exception_code == 1, "diagnostics (08): exception 01", rr)

# Several clients at once, interleaved: the select loop serves them all.
clients = [ModbusTcpClient("127.0.0.1", port=port, timeout=3) for _ in range(4)]
okc = all(x.connect() for x in clients)
errors = []
def worker(i, cl):
    for k in range(50):
        v = (i * 100 + k) % 500
        if cl.write_register(200 + i, v, slave=1).isError():
            errors.append("write %d" % i); return
        r = cl.read_holding_registers(200 + i, 1, slave=1)
        if r.isError() or r.registers[0] != v:
            errors.append("read %d: %s" % (i, r)); return
ts = [threading.Thread(target=worker, args=(i, cl)) for i, cl in enumerate(clients)]
for t in ts: t.start()
for t in ts: t.join()
result(okc and not errors, "4 concurrent clients x 50 write/read pairs", errors[:3])
for x in clients + [c]:
    x.close()
PYEOF
"$PY" "$tmp/client.py" "$P" >"$tmp/py.tap" 2>&1
pyrc=$?
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) no "${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done <"$tmp/py.tap"
check "pymodbus script exits cleanly (rc $pyrc)" test "$pyrc" -eq 0
[ "$pyrc" -eq 0 ] || sed 's/^/#   /' "$tmp/py.tap" | tail -5

stop_ok() { kill -TERM "$1" && timeout 5 tail --pid="$1" -f /dev/null && wait "$1"; }
check "SIGTERM stops the simulator cleanly (exit 0)" stop_ok "$s_pid"

if start_sim f --fast; then
	ok "fast loop starts"
	check "fast loop: mbpoll reads holding 100" test "$(mb_value -p "$f_port" -t 4 -r 100 127.0.0.1)" = 180
	check "fast loop: write then read back" sh -c "timeout 10 mbpoll -m tcp -a 1 -0 -1 -q -p $f_port -t 4 -r 150 127.0.0.1 4242 >/dev/null && timeout 10 mbpoll -m tcp -a 1 -0 -1 -q -p $f_port -t 4 -r 150 127.0.0.1 | grep -q 4242"
	check "fast loop: SIGTERM exit 0" stop_ok "$f_pid"
else
	no "fast loop starts" "$(cat "$tmp/f.log")"
fi

if start_sim one --max-clients 1; then
	# First client holds its connection open (a python socket); the second is closed at once.
	cat >"$tmp/limit.py" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
req = bytes([0, 1, 0, 0, 0, 6, 1, 3, 0, 100, 0, 1])
a = socket.create_connection(("127.0.0.1", port), timeout=3)
a.sendall(req)
ra = a.recv(64)
b = socket.create_connection(("127.0.0.1", port), timeout=3)
try:
    b.sendall(req)
    rb = b.recv(64)
except OSError:
    rb = b""
ok = len(ra) == 11 and ra[7] == 3 and rb == b""
sys.exit(0 if ok else 1)
PYEOF
	check "--max-clients 1: a second connection is closed, the first served" "$PY" "$tmp/limit.py" "$one_port"
	check "--max-clients 1: SIGTERM exit 0" stop_ok "$one_pid"
else
	no "--max-clients simulator starts" "$(cat "$tmp/one.log")"
fi

if start_sim slow --slow-ms 300; then
	t0=$(date +%s%N)
	v=$(mb_value -p "$slow_port" -t 4 -r 100 127.0.0.1)
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	check "--slow-ms 300: the answer comes, after >= 300 ms (took $ms ms)" test "$v" = 180 -a "$ms" -ge 300
	check "--slow-ms: SIGTERM exit 0" stop_ok "$slow_pid"
else
	no "--slow-ms simulator starts" "$(cat "$tmp/slow.log")"
fi

bad() { ! "$B" sim modbus "$@" >"$tmp/bad" 2>&1 && grep -q "$BAD_WANT" "$tmp/bad"; }
BAD_WANT="expected ADDR:PORT" check "bad --listen is a clear error" bad --listen nowhere
BAD_WANT="unknown model" check "unknown model is a clear error" bad --model chiller
BAD_WANT="cannot listen" check "unusable address is a clear error" bad --listen 10.255.255.1:0
echo "1..$n"
