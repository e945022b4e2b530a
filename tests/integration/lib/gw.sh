# tests/integration/lib/gw.sh: shared set-up for the gateway tests (sourced, not run).
# A site PKI made with `bmsgate pki`, an audit key, a simulated air handler, a guard and a
# tunnel on free loopback ports; helpers that wait on sockets and logs, never a fixed sleep.
set -u
cd "$(dirname "$0")/../.."
B=${BMSGATE:-build/bmsgate}
T=${BMSGATE_TOOLS:-build/tools}
PY=/usr/bin/python3 # Debian's python3, which has python3-pymodbus
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "${KEEP_TMP:-}" ] && echo "# kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '#   %s\n' "$l"; done; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
check() { local name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else no "$name" "$(head -c 1200 "$tmp/out")"; fi; }
# expect NAME WANT CMD...: the command's output (first line) must equal WANT
expect() {
	local name=$1 want=$2 got
	shift 2
	got=$("$@" 2>&1 | head -1)
	if [ "$got" = "$want" ]; then ok "$name"; else no "$name" "want: $want" "got:  $got"; fi
}
done_tests() { echo "1..$n"; }

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_log FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN (grep -E).
wait_log() {
	local f=$1 pat=$2 secs=${3:-10} i
	for i in $(seq 1 $((secs * 50))); do
		grep -Eq -- "$pat" "$f" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}
# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() {
	local p=$1 secs=${2:-10} i
	for i in $(seq 1 $((secs * 50))); do
		ss -ltnH "sport = :$p" 2>/dev/null | grep -q . && return 0
		sleep 0.02
	done
	return 1
}
# wait_gone PID [SECONDS]
wait_gone() {
	local p=$1 secs=${2:-10} i
	for i in $(seq 1 $((secs * 50))); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.02
	done
	return 1
}
# count_log FILE PATTERN: how many lines match
count_log() { grep -Ec -- "$2" "$1" 2>/dev/null || true; }

# The engine this gateway drives must be there: the Modbus decoder and the policy compiler.
gw_engine_missing() {
	if grep -q "placeholder until the Modbus decoder lands" parsers/modbus.c 2>/dev/null; then
		echo "the Modbus decoder (parsers/modbus.c) has not landed"
		return 0
	fi
	if grep -q "placeholder until the compiler lands\|policy compiler is not built yet" policies/*.c 2>/dev/null; then
		echo "the policy compiler (policies/) has not landed"
		return 0
	fi
	return 1
}

# gw_pki: a site CA, a guard certificate, controllers with and without roles, a revoked and an
# expired one, and a second CA nobody trusts.
gw_pki() {
	local P=$tmp/pki
	"$B" pki init "$P" --name "Test Site CA" >/dev/null &&
		"$B" pki issue "$P" --guard guard --ip 127.0.0.1 --dns localhost >/dev/null &&
		"$B" pki issue "$P" --controller operator1 --role operator >/dev/null &&
		"$B" pki issue "$P" --controller viewer1 --role viewer >/dev/null &&
		"$B" pki issue "$P" --controller norole1 --no-role >/dev/null &&
		"$B" pki issue "$P" --controller revoked1 --role operator >/dev/null &&
		"$B" pki issue "$P" --controller expired1 --role operator --not-before now-10d --not-after now-1d >/dev/null &&
		"$B" pki issue "$P" --controller rsa1 --role operator --key rsa >/dev/null &&
		"$B" pki issue "$P" --controller live1 --role operator >/dev/null &&
		"$B" pki revoke "$P" revoked1 --reason key-compromise >/dev/null &&
		"$B" pki init "$tmp/other" --name "Someone Else CA" >/dev/null &&
		"$B" pki issue "$tmp/other" --controller intruder --role operator >/dev/null &&
		"$B" audit keygen "$tmp/audit.key" "$tmp/audit.pub" >/dev/null
}

# start_sim NAME ARGS...: a simulated air handler on a free port ($NAME_port, $NAME_pid).
start_sim() {
	local name=$1
	shift
	rm -f "$tmp/$name.ready"
	"$B" sim modbus --listen 127.0.0.1:0 --ready-file "$tmp/$name.ready" "$@" >"$tmp/$name.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	eval "${name}_pid=$pid"
	for _ in $(seq 1 250); do
		[ -s "$tmp/$name.ready" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	[ -s "$tmp/$name.ready" ] || return 1
	eval "${name}_port=$(cut -d: -f2 "$tmp/$name.ready")"
}

# gw_policy DEVPORT [EXTRA]: the test site's policy (operators read the AHU and write its
# supply air setpoint within 15..30 degC; viewers read; unit 2 is the same device in monitor mode).
gw_policy() {
	cat >"$tmp/site.policy" <<POL
# test site
device ahu modbus 127.0.0.1 port $1 unit 1 {
  point supply_air_setpoint holding 100 scale 0.1 unit degC range 15..30
}
device ahu_trial modbus 127.0.0.1 port $1 unit 2 mode monitor {
  point supply_air_setpoint holding 100 scale 0.1 unit degC range 15..30
}
role operators {
  certificate-role operator
}
role viewers {
  certificate-role viewer
}
role plant_lan {
  address 127.0.0.0/8
}
allow operators read ahu
allow operators write ahu.supply_air_setpoint
allow viewers read ahu
allow operators read ahu_trial
allow plant_lan read ahu
${2:-}
POL
	chmod 600 "$tmp/site.policy"
}

# gw_guard_conf NAME DEVPORT [EXTRA-TOP-LEVEL-LINES] [EXTRA-DEVICE-LINES]: $tmp/NAME.conf with a TLS listener
# on $NAME_tls and a plain legacy listener on $NAME_plain.
gw_guard_conf() {
	local name=$1 dport=$2
	eval "${name}_tls=$(free_port)"
	eval "${name}_plain=$(free_port)"
	local tport plport
	tport=$(eval echo "\$${name}_tls")
	plport=$(eval echo "\$${name}_plain")
	cat >"$tmp/$name.conf" <<CONF
# guard for the gateway tests
node test-guard
listen tls 127.0.0.1:$tport
listen plain 127.0.0.1:$plport allow 127.0.0.1
certificate $tmp/pki/issued/guard.crt
key $tmp/pki/issued/guard.key
ca $tmp/pki/ca.crt
crl $tmp/pki/crl.pem
crl-poll 100ms
policy $tmp/site.policy
${3:-}
device ahu {
  address 127.0.0.1:$dport
  units 1
  response-timeout 1s
  ${4:-}
}
device ahu_trial {
  address 127.0.0.1:$dport
  units 2
}
audit {
  file $tmp/$name.audit.jsonl
  key $tmp/audit.key
  sync always
  results all
}
limits {
  handshake-timeout 3s
}
CONF
}

# start_proxy guard|tunnel NAME: runs `bmsgate guard|tunnel -c $tmp/NAME.conf`; waits for its "ready" line.
start_proxy() {
	local cmd=$1 name=$2
	: >"$tmp/$name.log"
	"$B" "$cmd" -c "$tmp/$name.conf" >>"$tmp/$name.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	eval "${name}_pid=$pid"
	for _ in $(seq 1 500); do
		grep -q ": ready$" "$tmp/$name.log" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}
start_guard() { start_proxy guard "$1"; }
start_tunnel() { start_proxy tunnel "$1"; }

# gw_tunnel_conf NAME GUARDPORT CERTNAME [EXTRA]: $tmp/NAME.conf listening on $NAME_port.
gw_tunnel_conf() {
	local name=$1
	eval "${name}_port=$(free_port)"
	local lport
	lport=$(eval echo "\$${name}_port")
	cat >"$tmp/$name.conf" <<CONF
listen 127.0.0.1:$lport
guard 127.0.0.1:$2
certificate $tmp/pki/issued/$3.crt
key $tmp/pki/issued/$3.key
ca $tmp/pki/ca.crt
connect-timeout 3s
backoff 200ms
${4:-}
CONF
}

# mbc PORT COMMAND ARGS...: the libmodbus client (options in $MBC_OPTS, e.g. "--unit 2")
mbc() { local p=$1; shift; timeout 20 "$T/gw_modbus_client" --timeout 3000 ${MBC_OPTS:-} 127.0.0.1 "$p" "$@" 2>&1; }

# py_checks ARGS...: runs gw_clients.py and turns its PASS/FAIL lines into TAP.
py_checks() {
	local line any=0
	timeout 60 $PY tests/integration/lib/gw_clients.py "$@" >"$tmp/py.out" 2>&1
	while IFS= read -r line; do
		case "$line" in
		"PASS "*) ok "${line#PASS }"; any=1 ;;
		"FAIL "*) no "${line#FAIL }"; any=1 ;;
		esac
	done <"$tmp/py.out"
	if grep -q "Traceback" "$tmp/py.out" || [ $any -eq 0 ]; then
		no "python client $1 ran to the end" "$(tail -c 1500 "$tmp/py.out")"
	fi
}

# audit_count LOG JQ-FILTER: how many records match
audit_count() { jq -c "select($2)" "$1" 2>/dev/null | wc -l; }
