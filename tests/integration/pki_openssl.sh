#!/usr/bin/env bash
# `bmsgate pki` checked by an independent implementation: the openssl CLI verifies chains and
# CRLs and prints the role extension; file modes and operator-facing errors are checked too.
set -u
cd "$(dirname "$0")/../.."
B=${BMSGATE:-build/bmsgate}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
no() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { local name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else no "$name" "$(head -c 600 "$tmp/out")"; fi; }
D=$tmp/site

check "init creates a site CA" "$B" pki init "$D" --name "Integration Site CA"
check "issue guard with SAN" "$B" pki issue "$D" --guard guard1 --dns guard.plant.example --ip 127.0.0.1
check "issue controller with role" "$B" pki issue "$D" --controller hmi --role operator
check "issue controller to be revoked" "$B" pki issue "$D" --controller stolen --role engineer
check "issue expired controller" "$B" pki issue "$D" --controller old --role operator --not-before now-10d --not-after now-1d
check "issue not-yet-valid controller" "$B" pki issue "$D" --controller early --role operator --not-before now+1d --days 30
check "issue RSA controller" "$B" pki issue "$D" --controller rsa-hmi --role viewer --key rsa
check "revoke by name" "$B" pki revoke "$D" stolen --reason key-compromise

perm() { [ "$(stat -c %a "$1")" = "$2" ]; }
check "site dir is 0700" perm "$D" 700
check "CA key is 0600" perm "$D/ca.key" 600
check "issued key is 0600" perm "$D/issued/hmi.key" 600
check "issued cert is 0644" perm "$D/issued/hmi.crt" 644

v() { openssl verify -CAfile "$D/ca.crt" -CRLfile "$D/crl.pem" -crl_check "$@"; }
check "openssl verifies guard cert with CRL check" v -purpose sslserver "$D/issued/guard1.crt"
check "openssl verifies controller cert with CRL check" v -purpose sslclient "$D/issued/hmi.crt"
check "openssl verifies RSA controller" v "$D/issued/rsa-hmi.crt"
fails_with() { local want=$1; shift; ! "$@" >"$tmp/o2" 2>&1 && grep -q "$want" "$tmp/o2"; }
check "openssl rejects the revoked cert" fails_with "certificate revoked" v "$D/issued/stolen.crt"
check "openssl rejects the expired cert" fails_with "certificate has expired" v "$D/issued/old.crt"
check "openssl rejects the not-yet-valid cert" fails_with "not yet valid" v "$D/issued/early.crt"
check "controller cert is not a server cert" fails_with "unsuitable certificate purpose" v -purpose sslserver "$D/issued/hmi.crt"

openssl x509 -in "$D/issued/hmi.crt" -noout -text >"$tmp/hmi.txt" 2>&1
# A critical extension would print "critical" after the colon; this one must not.
check "x509 -text shows the role OID, not critical" grep -qE '^ +1\.3\.6\.1\.4\.1\.50316\.802\.1: *$' "$tmp/hmi.txt"
der_is_utf8() {
	openssl x509 -in "$D/issued/hmi.crt" -outform DER -out "$tmp/hmi.der" &&
		openssl asn1parse -inform DER -in "$tmp/hmi.der" >"$tmp/asn1" &&
		grep -A1 '50316.802.1' "$tmp/asn1" | tail -1 | grep -q 'OCTET STRING' &&
		off=$(grep -A1 '50316.802.1' "$tmp/asn1" | tail -1 | sed 's/^ *\([0-9]*\):.*/\1/') &&
		openssl asn1parse -inform DER -in "$tmp/hmi.der" -strparse "$off" | grep -q 'UTF8STRING *:operator'
}
check "role extension value is a DER UTF8String 'operator'" der_is_utf8
check "guard SAN lists DNS and IP" grep -q "DNS:guard1, DNS:guard.plant.example, IP Address:127.0.0.1" <(openssl x509 -in "$D/issued/guard1.crt" -noout -ext subjectAltName)
check "guard cert has no role extension" sh -c "! openssl x509 -in '$D/issued/guard1.crt' -noout -text | grep -q 50316"
check "CA key is ECDSA P-256 by default" grep -q "prime256v1" <(openssl x509 -in "$D/ca.crt" -noout -text)
check "pki role prints the role" grep -qx operator <("$B" pki role "$D/issued/hmi.crt")

crl_has() { openssl crl -in "$D/crl.pem" -noout -text | grep -q "Serial Number: $1"; }
stolen_serial=$(openssl x509 -in "$D/issued/stolen.crt" -noout -serial | cut -d= -f2)
check "CRL lists the revoked serial" crl_has "$stolen_serial"
check "CRL signature verifies against the CA" openssl crl -in "$D/crl.pem" -CAfile "$D/ca.crt" -noout
hmi_serial=$(openssl x509 -in "$D/issued/hmi.crt" -noout -serial | cut -d= -f2)
check "revoke by serial" "$B" pki revoke "$D" "$hmi_serial"
check "CRL now lists that serial" crl_has "$hmi_serial"
check "crl refresh keeps the revoked entries" sh -c "'$B' pki crl '$D' && openssl crl -in '$D/crl.pem' -noout -text | grep -c 'Serial Number' | grep -qx 2"

"$B" pki list "$D" >"$tmp/list" 2>&1
check "list shows revoked, expired, not-yet-valid and valid" sh -c "grep -qE 'revoked +controller +stolen' '$tmp/list' && grep -qE 'expired +controller +old' '$tmp/list' && grep -qE ' valid +guard +guard1' '$tmp/list' && grep -qE 'not-yet-valid +controller +early' '$tmp/list'"

err_is() { local code=$1 want=$2; shift 2; "$@" >"$tmp/o3" 2>&1; local rc=$?; [ "$rc" -eq "$code" ] && grep -q "$want" "$tmp/o3"; }
check "missing CA is a clear error" err_is 1 "no site CA in $tmp/none" "$B" pki issue "$tmp/none" --controller x --role r
check "duplicate name is a clear error" err_is 1 "already exists" "$B" pki issue "$D" --controller rsa-hmi --role viewer
check "bad role is a clear error" err_is 1 "bad role 'a b'" "$B" pki issue "$D" --controller new --role "a b"
check "controller without --role is refused" err_is 2 "needs --role" "$B" pki issue "$D" --controller new
check "unknown revocation reason is refused" err_is 2 "unknown reason" "$B" pki revoke "$D" rsa-hmi --reason because
check "second init refuses to overwrite the CA" err_is 1 "refusing to overwrite" "$B" pki init "$D"
check "bad time is refused" err_is 2 "not-after 'yesterday'" "$B" pki issue "$D" --controller t --role r --not-after yesterday
echo "1..$n"
