#!/usr/bin/env bash
# The tunnel's side: it waits out a guard that is not up yet (back-off) and carries the waiting
# head-end connection once it is; it reports TLS failures with whose certificate and why (wrong
# guard name, a CA it does not trust, its own certificate revoked). And two guard limits:
# dropping privileges after binding, and connections per source.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "tunnel: $why"
	done_tests
	exit 0
fi
check "site PKI and audit key" gw_pki
start_sim sim || no "simulator starts" "$(cat "$tmp/sim.log")"
gw_policy "$sim_port"
gw_guard_conf g "$sim_port"
gw_tunnel_conf t "$g_tls" operator1
start_tunnel t || no "tunnel starts" "$(cat "$tmp/t.log")"

# the guard is not up yet: the head-end's connection waits while the tunnel retries with back-off
mbc "$t_port" read 100 1 >"$tmp/early.out" &
early=$!
check "guard down: the tunnel retries with back-off" wait_log "$tmp/t.log" "connection refused; retrying in [0-9]+ ms" 5
start_guard g || no "guard starts" "$(cat "$tmp/g.log")"
wait "$early"
expect "the waiting head-end connection is carried once the guard is up" "ok 180" cat "$tmp/early.out"
expect "exceptions pass through the tunnel unchanged" "exception 0x01" mbc "$t_port" write 100 999

# wrong name: the guard's certificate does not carry the name the tunnel expects
gw_tunnel_conf tn "$g_tls" operator1 "server-name wrong.example"
start_tunnel tn || no "tunnel (wrong name) starts" "$(cat "$tmp/tn.log")"
got=$(mbc "$tn_port" read 100 1)
case "$got" in "ok"*) no "wrong guard name: nothing is carried" "$got" ;; *) ok "wrong guard name: nothing is carried" ;; esac
check "wrong guard name: the tunnel says whose certificate and why" \
	grep -q "TLS handshake with guard 127.0.0.1:$g_tls (expected name wrong.example) failed: certificate refused: hostname mismatch.*the guard's certificate" "$tmp/tn.log"

# a CA the tunnel does not trust
sed "s|^ca .*|ca $tmp/other/ca.crt|" "$tmp/t.conf" | sed "s|^listen .*|listen 127.0.0.1:$(free_port)|" >"$tmp/tc.conf"
tc_port=$(sed -n 's/^listen 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/tc.conf")
start_tunnel tc || no "tunnel (other CA) starts" "$(cat "$tmp/tc.log")"
got=$(mbc "$tc_port" read 100 1)
case "$got" in "ok"*) no "untrusted guard CA: nothing is carried" "$got" ;; *) ok "untrusted guard CA: nothing is carried" ;; esac
check "untrusted guard CA: the tunnel says why" grep -Eq "certificate refused: (unable to get local issuer certificate|self-signed certificate in certificate chain).*the guard.s certificate" "$tmp/tc.log"

# the tunnel's own certificate is revoked: the guard refuses, the tunnel reports it
gw_tunnel_conf tr "$g_tls" revoked1
start_tunnel tr || no "tunnel (revoked) starts" "$(cat "$tmp/tr.log")"
got=$(mbc "$tr_port" read 100 1)
case "$got" in "ok"*) no "revoked tunnel certificate: nothing is carried" "$got" ;; *) ok "revoked tunnel certificate: nothing is carried" ;; esac
check "revoked tunnel certificate: the tunnel reports the guard's refusal" wait_log "$tmp/tr.log" "certificate revoked" 3

kill -TERM "$g_pid"
wait_gone "$g_pid" 10

# privileges: started as root with `user nobody`, the guard runs as nobody after binding
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	acl_port=$(free_port)
	gw_guard_conf p "$sim_port" "user nobody
listen plain 127.0.0.1:$acl_port allow 10.9.9.9 192.168.0.0/16"
	sed -i "s|^limits {|limits {\n  connections-per-source 2|" "$tmp/p.conf"
	# what the guard re-reads after the drop must be nobody's to read (the start-up checks it),
	# and the audit directory nobody's to write: the site PKI opened up for it, the key its own
	chmod 711 "$tmp" "$tmp/pki" "$tmp/pki/issued"
	chmod 644 "$tmp/pki/ca.crt" "$tmp/pki/crl.pem" "$tmp/pki/issued/guard.crt" "$tmp/site.policy"
	cp "$tmp/pki/issued/guard.key" "$tmp/pki/issued/guard-nobody.key"
	chown nobody "$tmp/pki/issued/guard-nobody.key" && chmod 600 "$tmp/pki/issued/guard-nobody.key"
	mkdir -p "$tmp/pa" && chown nobody "$tmp/pa"
	sed -i "s|^key $tmp/pki/issued/guard.key|key $tmp/pki/issued/guard-nobody.key|; s|$tmp/p.audit.jsonl|$tmp/pa/p.audit.jsonl|" "$tmp/p.conf"
	if start_guard p; then
		uid=$(awk '/^Uid:/ { print $2 }' "/proc/$p_pid/status")
		check "user nobody: the guard runs as nobody after binding" test "$uid" = "$(id -u nobody)"
		check "user nobody: it says so" grep -q "running as user nobody" "$tmp/p.log"
		expect "user nobody: requests still flow (legacy listener, read)" "ok 180" mbc "$p_plain" read 100 1
		# connections per source: the third concurrent connection from 127.0.0.1 is refused
		$PY - "$p_plain" >"$tmp/ps.out" 2>&1 <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
# a request on each proves both were accepted before the third
req = bytes([0, 1, 0, 0, 0, 6, 1, 3, 0, 100, 0, 1])
for s in held:
    s.settimeout(5)
    s.sendall(req)
    assert len(s.recv(64)) >= 9
third = socket.create_connection(("127.0.0.1", port))
third.settimeout(5)
try:
    third.sendall(req)
    b = third.recv(64)
except OSError:
    b = b""
print("third refused" if b == b"" else "third answered %r" % b)
PYEOF
		check "connections-per-source 2: the third connection is refused" grep -qx "third refused" "$tmp/ps.out"
		check "audit: the per-source refusal is recorded" wait_log "$tmp/pa/p.audit.jsonl" '"kind":"conn_refused".*per-source connection limit' 3
		# the same limit on the TLS listener, refused before any TLS state exists
		$PY - "$p_tls" >"$tmp/pt.out" 2>&1 <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
# the guard accepts in the order the kernel queued the connections: the third is the one over
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
third = socket.create_connection(("127.0.0.1", port))
third.settimeout(5)
try:
    b = third.recv(64)
except OSError:
    b = b""
print("third refused" if b == b"" else "third answered %r" % b)
PYEOF
		check "connections-per-source 2 on the TLS listener: the third is refused" grep -qx "third refused" "$tmp/pt.out"
		# a plain listener that allows other networks only
		got=$(mbc "$acl_port" read 100 1)
		case "$got" in "ok"*) no "plain listener: a source outside its allow list is refused" "$got" ;;
		*) ok "plain listener: a source outside its allow list is refused" ;; esac
		check "audit: the refusal names the reason" wait_log "$tmp/pa/p.audit.jsonl" '"kind":"conn_refused".*source address not allowed' 3
		check "the guard survived all of it" kill -0 "$p_pid"
	else
		no "guard with user nobody starts" "$(cat "$tmp/p.log")"
	fi
else
	skip "privilege drop needs root and a nobody user"
fi
done_tests
