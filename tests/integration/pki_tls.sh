#!/usr/bin/env bash
# Certificates from `bmsgate pki` in a real mutual-TLS handshake between two programs we did not
# write: openssl s_server (requires and verifies a client certificate against ca.crt and crl.pem)
# and openssl s_client (verifies the server against ca.crt and the guard's IP SAN).
set -u
cd "$(dirname "$0")/../.."
B=${BMSGATE:-build/bmsgate}
PY=/usr/bin/python3
tmp=$(mktemp -d)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
D=$tmp/site
{
	"$B" pki init "$D" &&
		"$B" pki issue "$D" --guard guard1 --ip 127.0.0.1 &&
		"$B" pki issue "$D" --controller hmi --role operator &&
		"$B" pki issue "$D" --controller rsa-hmi --role operator --key rsa &&
		"$B" pki issue "$D" --controller gone --role operator &&
		"$B" pki revoke "$D" gone
} >"$tmp/pki.log" 2>&1 || { no "site PKI" "$(cat "$tmp/pki.log")"; echo "1..$n"; exit 1; }
ok "site PKI with guard, controllers and a revoked controller"

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# -naccept: serve this many handshakes, then exit; -Verify 1 makes a client certificate mandatory.
openssl s_server -accept "127.0.0.1:$port" -naccept 4 -cert "$D/issued/guard1.crt" -key "$D/issued/guard1.key" \
	-CAfile "$D/ca.crt" -Verify 1 -verify_return_error -crl_check -CRL "$D/crl.pem" \
	-purpose sslclient -quiet </dev/null >"$tmp/server.log" 2>&1 &
srv=$!
up=0
for _ in $(seq 1 250); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
	kill -0 "$srv" 2>/dev/null || break
	sleep 0.02
done
# The probe above was accepted as one of the -naccept handshakes (it failed: no certificate).
if [ $up -eq 1 ]; then ok "openssl s_server is up with the guard certificate"; else no "openssl s_server starts" "$(cat "$tmp/server.log")"; fi

# The server logs its verdict on each client certificate ("depth=0 CN = NAME" then "verify
# return:1" or the error): in TLS 1.3 a client finishes its side of the handshake before the
# server has judged its certificate, so the client's output alone proves nothing about that.
client() { # NAME: one mutual-TLS handshake as that controller; output in $tmp/NAME.out
	timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$D/ca.crt" \
		-verify_ip 127.0.0.1 -verify_return_error -cert "$D/issued/$1.crt" -key "$D/issued/$1.key" \
		</dev/null >"$tmp/$1.out" 2>&1
}
accepted() { grep -A1 -x "depth=0 CN = $1" "$tmp/server.log" | grep -qx "verify return:1"; }
client hmi
client rsa-hmi
client gone
# The server exits after its 4th connection; wait for it so its output is complete.
timeout 10 tail --pid="$srv" -f /dev/null
srv=""
if grep -q "Verification: OK" "$tmp/hmi.out" && accepted hmi; then
	ok "ECDSA controller and guard complete a mutual-TLS handshake, each verifying the other"
else
	no "ECDSA controller handshake" "$(tail -5 "$tmp/hmi.out")" "$(tail -5 "$tmp/server.log")"
fi
if grep -q "Verification: OK" "$tmp/rsa-hmi.out" && accepted rsa-hmi; then
	ok "RSA controller completes a mutual-TLS handshake"
else
	no "RSA controller handshake" "$(tail -5 "$tmp/rsa-hmi.out")" "$(tail -5 "$tmp/server.log")"
fi
if grep -q "certificate revoked" "$tmp/server.log" && ! accepted gone; then
	ok "the revoked controller is refused by the server's CRL check"
else
	no "the revoked controller is refused by the server's CRL check" "$(tail -5 "$tmp/gone.out")" "$(tail -8 "$tmp/server.log")"
fi
echo "1..$n"
