#!/usr/bin/env bash
# Identity at its limits against a live guard, with certificates made by openssl and by
# `bmsgate pki`: a subject of exactly 255 bytes is held whole and matched; the same subject plus
# ",C=ZZ" is refused (never cut back into the allowed one) and the refusal audited with why; a
# 64-byte role is issued, carried and matched, a 65-byte one is no role; a role extension that is
# not valid UTF-8 or not a UTF8String is no role, recorded on the accepted connection; `policy
# check` takes the same limits. The guard runs as `user nobody` over a PKI made with
# `pki init --group nogroup`, and still picks up a revocation after dropping privileges.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "identity limits: $why"
	done_tests
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! getent passwd nobody >/dev/null || ! getent group nogroup >/dev/null; then
	skip "identity limits: needs root and the user nobody / group nogroup to run the guard as a service user"
	done_tests
	exit 0
fi
P=$tmp/pki
chmod 711 "$tmp" # the service user passes through to the PKI, as through /etc
R64=$(printf 'r%.0s' $(seq 1 64))
R65=${R64}r
Q64=$(printf 'q%.0s' $(seq 1 64))
check "pki init --group nogroup and a guard certificate" sh -c "'$B' pki init '$P' --group nogroup >/dev/null && '$B' pki issue '$P' --guard guard --ip 127.0.0.1 >/dev/null"
check "layout: DIR and issued/ 0750 root:nogroup, guard key 0640 root:nogroup, CA key 0600" sh -c \
	"[ \"\$(stat -c '%a %U:%G' '$P' '$P/issued' '$P/issued/guard.key' '$P/ca.key' '$P/crl.pem' | tr '\n' ' ')\" = '750 root:nogroup 750 root:nogroup 640 root:nogroup 600 root:root 644 root:root ' ]"
check "the service user can read the guard's certificate, key, CA and CRL, not the CA key" sh -c \
	"setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c 'cat $P/issued/guard.crt $P/issued/guard.key $P/ca.crt $P/crl.pem >/dev/null && ! cat $P/ca.key 2>/dev/null'"
check "pki issue: a 64-byte role" "$B" pki issue "$P" --controller role64 --role "$R64"
expect "pki role reads the 64-byte role back" "$R64" "$B" pki role "$P/issued/role64.crt"
check "pki issue: a 65-byte role is refused" sh -c "! '$B' pki issue '$P' --controller role65 --role '$R65' >'$tmp/r65.out' 2>&1 && grep -q \"bad role '$R65' (1..64 \" '$tmp/r65.out'"
check "pki issue: the 64-byte role again, as a rule names it" "$B" pki issue "$P" --controller q64 --role "$Q64"
check "pki issue: a controller whose role the policy does not know" "$B" pki issue "$P" --controller other --role other
check "pki issue: a controller to revoke while the guard runs" "$B" pki issue "$P" --controller live --role "$R64"
check "audit key" "$B" audit keygen "$tmp/audit.key" "$tmp/audit.pub"

# openssl-made controller certificates signed by the site CA: subjects of chosen lengths, odd role encodings
a60=$(printf 'a%.0s' $(seq 1 60)); b60=$(printf 'b%.0s' $(seq 1 60)); c60=$(printf 'c%.0s' $(seq 1 60)); d45=$(printf 'd%.0s' $(seq 1 45))
S255="CN=ctl,OU=$d45,OU=$c60,OU=$b60,OU=$a60,O=Plant" # RFC 2253: the last RDN first
mk() { # NAME SUBJ [EXTRA-EXTENSION-LINE]
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n%s\n' "${3:-}" >"$tmp/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$1.key" -subj "$2" \
		-out "$tmp/$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$tmp/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -set_serial "0x$(openssl rand -hex 12)" \
			-days 2 -extfile "$tmp/$1.ext" -out "$tmp/$1.crt" 2>/dev/null
}
check "openssl: a subject of 255 bytes" mk s255 "/O=Plant/OU=$a60/OU=$b60/OU=$c60/OU=$d45/CN=ctl"
check "openssl: the same subject plus ,C=ZZ (260 bytes)" mk s260 "/C=ZZ/O=Plant/OU=$a60/OU=$b60/OU=$c60/OU=$d45/CN=ctl"
check "openssl: a 65-byte role" mk r65 "/CN=r65" "1.3.6.1.4.1.50316.802.1=ASN1:UTF8String:$R65"
check "openssl: a role of eight letters and byte 0xff (not UTF-8)" mk badutf8 "/CN=badutf8" "1.3.6.1.4.1.50316.802.1=DER:0c:09:$(printf "$R64" | head -c 8 | od -An -tx1 | tr -s ' ' ':' | sed 's/^://;s/:$//'):ff"
check "openssl: the 64-byte role as a PrintableString" mk printable "/CN=printable" "1.3.6.1.4.1.50316.802.1=ASN1:PRINTABLESTRING:$R64"
expect "openssl subject prints to 255 bytes in RFC 2253 form" "255" sh -c "openssl x509 -in '$tmp/s255.crt' -noout -subject -nameopt RFC2253 | sed 's/^subject=//' | tr -d '\n' | wc -c"

if ! start_sim sim; then
	no "simulated air handler starts" "$(cat "$tmp/sim.log")"
	done_tests
	exit 1
fi
cat >"$tmp/site.policy" <<POL
device ahu modbus 127.0.0.1 port $sim_port unit 1 {
  point supply_air_setpoint holding 100 scale 0.1 unit degC range 15..30
}
device ahu_trial modbus 127.0.0.1 port $sim_port unit 2 mode monitor {
  point supply_air_setpoint holding 100 scale 0.1 unit degC range 15..30
}
role long_subject {
  subject "$S255"
}
role long_role {
  certificate-role $R64
}
allow long_subject read ahu
allow long_role read ahu
allow $Q64 read ahu
allow long_role read ahu_trial
POL
chgrp nogroup "$tmp/site.policy"
chmod 640 "$tmp/site.policy"
check "policy check: a 255-byte subject and 64-byte roles (block and rule) are accepted" sh -c "'$B' policy check '$tmp/site.policy' 2>&1 | grep -q '^policy OK: 2 devices, 2 points, 3 roles, 4 rules, 1 warning$'"
sed "s/certificate-role $R64/certificate-role $R65/" "$tmp/site.policy" >"$tmp/bad1.policy"
sed "s/^allow $Q64 /allow ${Q64}q /" "$tmp/site.policy" >"$tmp/bad2.policy"
sed "s/subject \"CN=ctl,/subject \"CN=ctlx,/" "$tmp/site.policy" >"$tmp/bad3.policy"
chmod 600 "$tmp"/bad*.policy
check "policy check: a 65-byte certificate-role is refused with its length" sh -c "! '$B' policy check '$tmp/bad1.policy' >'$tmp/pc1' 2>&1 && grep -q 'is 65 bytes, longer than 64' '$tmp/pc1'"
check "policy check: a 65-character role named in a rule is refused" sh -c "! '$B' policy check '$tmp/bad2.policy' >'$tmp/pc2' 2>&1 && grep -q 'at most 64 characters' '$tmp/pc2'"
check "policy check: a 256-byte subject is refused" sh -c "! '$B' policy check '$tmp/bad3.policy' >'$tmp/pc3' 2>&1 && grep -q 'longer than 255' '$tmp/pc3'"

# explain takes the guard's limits too: a longer subject is refused, never cut into the allowed one
check "policy explain --subject: the 255-byte subject is allowed" sh -c "'$B' policy explain '$tmp/site.policy' --subject '$S255' 'read ahu.supply_air_setpoint' | grep -q '^decision: allow'"
check "policy explain --subject: the same plus ,C=ZZ is refused, not cut" sh -c "'$B' policy explain '$tmp/site.policy' --subject '$S255,C=ZZ' 'read ahu.supply_air_setpoint' >'$tmp/ex1' 2>&1; [ \$? -eq 2 ] && grep -q 'is 260 bytes, longer than 255' '$tmp/ex1'"
check "policy explain --cert-role: the 64-byte role is allowed" sh -c "'$B' policy explain '$tmp/site.policy' --cert-role '$R64' 'read ahu.supply_air_setpoint' | grep -q '^decision: allow'"
check "policy explain --cert-role: a 65-byte role is refused, not cut" sh -c "'$B' policy explain '$tmp/site.policy' --cert-role '$R65' 'read ahu.supply_air_setpoint' >'$tmp/ex2' 2>&1; [ \$? -eq 2 ] && grep -q 'is 65 bytes, longer than 64' '$tmp/ex2'"

gw_guard_conf g "$sim_port" "user nobody"
mkdir -p "$tmp/audit" && chown nobody:nogroup "$tmp/audit"
sed -i "s#file $tmp/g.audit.jsonl#file $tmp/audit/g.audit.jsonl#" "$tmp/g.conf"
A=$tmp/audit/g.audit.jsonl
if ! start_guard g; then
	no "guard starts as user nobody" "$(cat "$tmp/g.log")"
	done_tests
	exit 1
fi
ok "guard starts as user nobody"
rd() { timeout 20 $PY tests/integration/lib/tls_read.py "$g_tls" "$P/ca.crt" "$1" "$2" 2>&1 | head -1; }
expect "the 255-byte subject is held whole and allowed" "ok 180" rd "$tmp/s255.crt" "$tmp/s255.key"
got=$(rd "$tmp/s260.crt" "$tmp/s260.key")
case "$got" in refused:* | closed) ok "the allowed subject plus ,C=ZZ is refused ($got)" ;; *) no "the allowed subject plus ,C=ZZ is refused" "got: $got" ;; esac
check "audit: the refusal says the subject is too long, and names its start as cut" \
	wait_log "$A" "\"kind\":\"conn_refused\".*\"subject\":\"CN=ctl,OU=d+[^\"]*…\".*certificate subject of 260 bytes is longer than the 255 a guard holds" 5
check "audit: the refusal names the certificate by its fingerprint" sh -c "jq -r 'select(.kind==\"conn_refused\" and (.detail|test(\"260 bytes\"))) | .peer.fingerprint' '$A' | grep -qx \"\$(openssl x509 -in '$tmp/s260.crt' -outform DER | sha256sum | cut -d\" \" -f1)\""
check "audit: no decision was ever made for the longer subject" sh -c "! jq -r 'select(.kind==\"decision\") | .peer.subject' '$A' | grep -q 'C=ZZ\\|…'"
expect "a 64-byte role from pki is carried and matched (certificate-role)" "ok 180" rd "$P/issued/role64.crt" "$P/issued/role64.key"
expect "a 64-byte role named directly in a rule is matched" "ok 180" rd "$P/issued/q64.crt" "$P/issued/q64.key"
check "audit: the decision's peer carries the 64-byte role" sh -c "jq -r 'select(.kind==\"decision\" and .decision==\"allow\") | .peer.role' '$A' | grep -qx '$R64'"
expect "a 65-byte role is no role: denied" "exception 0x01" rd "$tmp/r65.crt" "$tmp/r65.key"
expect "a role that is not valid UTF-8 is no role: denied" "exception 0x01" rd "$tmp/badutf8.crt" "$tmp/badutf8.key"
expect "a PrintableString role is no role: denied" "exception 0x01" rd "$tmp/printable.crt" "$tmp/printable.key"
check "audit: the accepted connection says why the role was ignored (too long)" grep -q '"kind":"conn_accepted".*CN=r65.*role extension ignored (no role): the role is longer than 64 bytes' "$A"
check "audit: ... (not UTF-8)" grep -q '"kind":"conn_accepted".*CN=badutf8.*role extension ignored (no role): the role is not valid UTF-8' "$A"
check "audit: ... (PrintableString)" grep -q '"kind":"conn_accepted".*CN=printable.*role extension ignored (no role): a PrintableString, not a UTF8String' "$A"
check "audit: no decision carries a role for them" sh -c "[ -z \"\$(jq -r 'select(.kind==\"decision\" and (.peer.subject==\"CN=r65\" or .peer.subject==\"CN=badutf8\" or .peer.subject==\"CN=printable\")) | .peer.role // empty' '$A')\" ]"
expect "a controller with a role the policy does not know: denied" "exception 0x01" rd "$P/issued/other.crt" "$P/issued/other.key"

# revocation after the privilege drop: the guard (nobody) re-reads crl.pem, key and CA
expect "before revocation: live is allowed" "ok 180" rd "$P/issued/live.crt" "$P/issued/live.key"
check "guard runs as nobody" sh -c "[ \"\$(ps -o user= -p $g_pid)\" = nobody ]"
"$B" pki revoke "$P" live >/dev/null
check "the guard, as nobody, reloads the CRL after the revocation" wait_log "$tmp/g.log" "reloaded CRL" 10
check "the guard's log has no failed reload" sh -c "! grep -q 'reload of .* failed' '$tmp/g.log'"
got=$(rd "$P/issued/live.crt" "$P/issued/live.key")
case "$got" in refused:* | closed) ok "after revocation: live is refused ($got)" ;; *) no "after revocation: live is refused" "got: $got" "$(tail -5 "$tmp/g.log")" ;; esac
check "audit: live refused as revoked" wait_log "$A" '"kind":"conn_refused".*certificate revoked.*CN=live' 5
kill -TERM "$g_pid"
check "guard stops on SIGTERM" wait_gone "$g_pid" 10
done_tests
