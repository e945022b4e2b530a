#!/usr/bin/env bash
# What `guard -n` and the guard's start-up refuse (issue 11): an unknown user, files the user
# cannot re-read after the privilege drop, an audit directory that is missing or not writable
# by the user, an audit key that is not Ed25519, private keys others may read, a guard device
# the policy does not declare; each `file:line: message`, and a good configuration still OK.
# Then a guard running as a service user: every reload audited (policy hash before and after,
# or why it failed), a CRL that cannot be re-read refuses new sessions (crl-stale refuse) or
# is kept loudly (crl-stale keep), a CRL past its nextUpdate, and deny reasons that name the
# address, port and unit the guard could not place.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "gateway checks: $why"
	done_tests
	exit 0
fi
check "site PKI and audit key" gw_pki
start_sim sim || no "simulator starts" "$(cat "$tmp/sim.log")"
gw_policy "$sim_port"
chmod 711 "$tmp" # the service user may pass through to the files it is given, no more

# The service user: a system user of our own, or nobody.
U=""
if [ "$(id -u)" -eq 0 ]; then
	if id -u bmsgate-test >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin bmsgate-test >/dev/null 2>&1; then
		U=bmsgate-test
	elif id -u nobody >/dev/null 2>&1; then
		U=nobody
	fi
fi

# mkconf NAME USERLINE KEY AUDITFILE AUDITKEY DEVPORT CRL POLICY CERT CA [EXTRA]: fixed line numbers
# (2 user, 5 key, 7 crl, 8 policy, 10 device address, 14 audit file, 15 audit key).
mkconf() {
	local name=$1
	eval "${name}_tls=$(free_port)"
	cat >"$tmp/$name.conf" <<CONF
node test-guard
$2
listen tls 127.0.0.1:$(eval echo "\$${name}_tls")
certificate $9
key $3
ca ${10}
crl $7
policy $8
device ahu {
  address 127.0.0.1:$6
  units 1
}
audit {
  file $4
  key $5
  sync always
  results all
}
crl-poll 100ms
${11:-}
CONF
}
P=$tmp/pki
base() { mkconf "$1" "$2" "$3" "$4" "$5" "$6" "${7:-$P/crl.pem}" "${8:-$tmp/site.policy}" "$P/issued/guard.crt" "$P/ca.crt" "${9:-}"; }
# n_err NAME WANT...: guard -n exits 1, prints each WANT line (fixed strings, whole line), never OK
n_err() {
	local name=$1
	shift
	"$B" guard -n -c "$tmp/$name.conf" >"$tmp/$name.n" 2>&1
	local rc=$? w
	if [ $rc -ne 1 ]; then no "guard -n ($name) exits 1" "exit $rc" "$(head -c 800 "$tmp/$name.n")"; return; fi
	if grep -q "configuration OK" "$tmp/$name.n"; then no "guard -n ($name) does not say OK" "$(cat "$tmp/$name.n")"; return; fi
	for w in "$@"; do
		if ! grep -qxF -- "$w" "$tmp/$name.n"; then no "guard -n ($name): $w" "got:" "$(head -c 1500 "$tmp/$name.n")"; return; fi
	done
	ok "guard -n ($name): exit 1 with: ${1:0:140}"
}
# start_refused NAME WANT: the guard does not start (no ready line) and its log says WANT
start_refused() {
	local name=$1 want=$2
	: >"$tmp/$name.log"
	timeout 20 "$B" guard -c "$tmp/$name.conf" >>"$tmp/$name.log" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && ! grep -q ": ready$" "$tmp/$name.log" && grep -qF -- "$want" "$tmp/$name.log"; then
		ok "start-up ($name) refused: ${want:0:120}"
	else
		no "start-up ($name) refused: $want" "exit $rc" "$(head -c 1500 "$tmp/$name.log")"
	fi
}

# ---- guard -n and start-up, as root (no user) ----
AF=$tmp/audit-root/a.jsonl
mkdir -p "$tmp/audit-root"
base good "" "$P/issued/guard.key" "$AF" "$tmp/audit.key" "$sim_port"
expect "a good configuration: configuration OK" "configuration OK" sh -c "'$B' guard -n -c '$tmp/good.conf' 2>&1"

# The shipped example etc/guard.conf with the example policy it names, only its paths changed
# to this test's files: its devices must be the policy's (they once routed the chiller to units
# the policy did not declare, and put two devices on one unit).
mkdir -p "$tmp/example-log"
cp policies/examples/hvac-plant.policy "$tmp/example.policy" && chmod 644 "$tmp/example.policy"
sed -e '/^user /d' -e 's|^log syslog.*|log stderr|' \
	-e "s|/etc/bmsgate/pki/issued/plant4-guard|$P/issued/guard|" -e "s|/etc/bmsgate/pki/|$P/|" \
	-e "s|/etc/bmsgate/hvac-plant.policy|$tmp/example.policy|" \
	-e "s|/var/log/bmsgate/audit.jsonl|$tmp/example-log/audit.jsonl|" -e "s|/etc/bmsgate/audit.key|$tmp/audit.key|" \
	etc/guard.conf >"$tmp/example.conf"
expect "the shipped example config with the example policy: configuration OK" "configuration OK" \
	sh -c "'$B' guard -n -c '$tmp/example.conf' 2>&1"
base nouser "user no-such-user-bmsgate" "$P/issued/guard.key" "$AF" "$tmp/audit.key" "$sim_port"
n_err nouser "$tmp/nouser.conf:2: user: no such user 'no-such-user-bmsgate' (create it: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin no-such-user-bmsgate)"
start_refused nouser "$tmp/nouser.conf:2: user: no such user 'no-such-user-bmsgate'"

base nodir "" "$P/issued/guard.key" "$tmp/no-such-dir/a.jsonl" "$tmp/audit.key" "$sim_port"
n_err nodir "$tmp/nodir.conf:14: audit file $tmp/no-such-dir/a.jsonl: its directory $tmp/no-such-dir: No such file or directory"

base eckey "" "$P/issued/guard.key" "$AF" "$P/issued/operator1.key" "$sim_port"
n_err eckey "$tmp/eckey.conf:15: audit key: key $P/issued/operator1.key is not an Ed25519 key"

cp "$tmp/audit.key" "$tmp/audit644.key" && chmod 644 "$tmp/audit644.key"
base ak644 "" "$P/issued/guard.key" "$AF" "$tmp/audit644.key" "$sim_port"
n_err ak644 "$tmp/ak644.conf:15: audit key: private key $tmp/audit644.key is readable by others (mode 644); chmod 600 it"

cp "$P/issued/guard.key" "$tmp/guard640.key" && chmod 640 "$tmp/guard640.key"
base k640 "" "$tmp/guard640.key" "$AF" "$tmp/audit.key" "$sim_port"
n_err k640 "$tmp/k640.conf:5: key $tmp/guard640.key: refusing a private key that its group may read or write (mode 0640); run: chmod 600 $tmp/guard640.key"
start_refused k640 "$tmp/k640.conf:5: key $tmp/guard640.key: refusing a private key that its group may read or write (mode 0640)"
cp "$P/issued/guard.key" "$tmp/guard604.key" && chmod 604 "$tmp/guard604.key"
base k604 "" "$tmp/guard604.key" "$AF" "$tmp/audit.key" "$sim_port"
n_err k604 "$tmp/k604.conf:5: key $tmp/guard604.key: refusing a private key that anyone may read or write (mode 0604); run: chmod 600 $tmp/guard604.key"

other=$((sim_port == 65535 ? sim_port - 1 : sim_port + 1))
base devx "" "$P/issued/guard.key" "$AF" "$tmp/audit.key" "$other"
n_err devx "$tmp/devx.conf:10: device 'ahu': no device in the policy is declared at 127.0.0.1 port $other unit 1: every request for it would be denied; the policy's Modbus devices: ahu at 127.0.0.1 port $sim_port, ahu_trial at 127.0.0.1 port $sim_port"
start_refused devx "$tmp/devx.conf:10: device 'ahu': no device in the policy is declared at 127.0.0.1 port $other unit 1"

# ---- as a service user ----
if [ -z "$U" ]; then
	skip "service-user checks: not running as root, or no user could be made (useradd --system bmsgate-test)"
	done_tests
	exit 0
fi
G=$(id -gn "$U")
# the pki directory as `pki init` makes it (0700 root): the user cannot re-read anything in it
mkdir -p "$tmp/audit-u" && chown "$U" "$tmp/audit-u" && chmod 700 "$tmp/audit-u"
base upki "user $U" "$P/issued/guard.key" "$tmp/audit-u/a.jsonl" "$tmp/audit.key" "$sim_port"
n_err upki \
	"$tmp/upki.conf:4: certificate $P/issued/guard.crt: user $U cannot read it (Permission denied): the guard re-reads it as that user on SIGHUP, after dropping privileges" \
	"$tmp/upki.conf:5: key $P/issued/guard.key: user $U cannot read it (Permission denied): the guard re-reads it as that user on SIGHUP and whenever the CRL changes, after dropping privileges" \
	"$tmp/upki.conf:7: crl $P/crl.pem: user $U cannot read it (Permission denied): the guard re-reads it as that user whenever it changes and on SIGHUP, after dropping privileges" \
	"$tmp/upki.conf:8: policy $tmp/site.policy: user $U cannot read it (Permission denied): the guard re-reads it as that user on SIGHUP, after dropping privileges"
start_refused upki "$tmp/upki.conf:7: crl $P/crl.pem: user $U cannot read it (Permission denied)"

# the service layout: a directory the user's group may enter, public files 0644, the TLS key
# the user's own (0600), the policy root's (0644), the audit directory the user's
S=$tmp/svc
mkdir -p "$S/audit"
cp "$P/ca.crt" "$P/crl.pem" "$P/issued/guard.crt" "$S/"
cp "$P/issued/guard.key" "$S/guard.key"
cp "$tmp/site.policy" "$S/site.policy"
chmod 644 "$S/ca.crt" "$S/crl.pem" "$S/guard.crt" "$S/site.policy"
chown "$U" "$S/guard.key" "$S/audit" && chmod 600 "$S/guard.key" && chmod 700 "$S/audit"
chgrp "$G" "$S" && chmod 750 "$S"
svc() { mkconf "$1" "user $U" "$S/guard.key" "${2:-$S/audit/a.jsonl}" "$tmp/audit.key" "$sim_port" "$S/crl.pem" "$S/site.policy" "$S/guard.crt" "$S/ca.crt" "${3:-}"; }

svc uaudit "$tmp/audit-root/u.jsonl"
n_err uaudit "$tmp/uaudit.conf:14: audit file $tmp/audit-root/u.jsonl: user $U cannot create files in $tmp/audit-root (Permission denied): the guard rotates the log there after dropping privileges"

# an include the user cannot read is found by compiling the policy as that user
printf 'include "%s"\n' "$tmp/secret.inc" >>"$S/site.policy"
printf '# nothing\n' >"$tmp/secret.inc" && chmod 600 "$tmp/secret.inc"
svc uinc
"$B" guard -n -c "$tmp/uinc.conf" >"$tmp/uinc.n" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -qxF "$tmp/uinc.conf:8: policy: does not load as user $U, who reloads it on SIGHUP after dropping privileges:" "$tmp/uinc.n" &&
	grep -q "^/.*:[0-9]*:[0-9]*: error: cannot read included file '$tmp/secret.inc': Permission denied" "$tmp/uinc.n"; then
	ok "guard -n: a policy include the user cannot read is an error, with the include's file:line"
else
	no "guard -n: a policy include the user cannot read is an error" "exit $rc" "$(cat "$tmp/uinc.n")"
fi
cp "$tmp/site.policy" "$S/site.policy"

# the key shared as `pki --group` lays it out (PostgreSQL's rule): root's, 0640, in the user's
# primary group, is accepted; the same mode in another group, or the user's own key in its
# group, is not
cp "$S/guard.key" "$S/shared.key" && chown 0:"$G" "$S/shared.key" && chmod 640 "$S/shared.key"
mkconf kshare "user $U" "$S/shared.key" "$S/audit/a.jsonl" "$tmp/audit.key" "$sim_port" "$S/crl.pem" "$S/site.policy" "$S/guard.crt" "$S/ca.crt"
expect "a root key 0640 in the user's group: configuration OK" "configuration OK" sh -c "'$B' guard -n -c '$tmp/kshare.conf' 2>&1"
OG=$(getent group | awk -F: -v g="$G" '$1 != g && $3 != 0 { print $1; exit }')
if [ -n "$OG" ]; then
	OGID=$(getent group "$OG" | cut -d: -f3)
	UGID=$(id -g "$U")
	cp "$S/guard.key" "$S/other.key" && chown 0:"$OG" "$S/other.key" && chmod 640 "$S/other.key"
	mkconf kother "user $U" "$S/other.key" "$S/audit/a.jsonl" "$tmp/audit.key" "$sim_port" "$S/crl.pem" "$S/site.policy" "$S/guard.crt" "$S/ca.crt"
	n_err kother "$tmp/kother.conf:5: key $S/other.key: refusing a private key that its group may read (mode 0640, owner uid 0, group gid $OGID): make it root's in group $UGID of user $U (chown 0:$UGID), or run: chmod 600 $S/other.key"
else
	skip "a key in another group: no second group on this machine"
fi
cp "$S/guard.key" "$S/own.key" && chown "$U":"$G" "$S/own.key" && chmod 640 "$S/own.key"
mkconf kown "user $U" "$S/own.key" "$S/audit/a.jsonl" "$tmp/audit.key" "$sim_port" "$S/crl.pem" "$S/site.policy" "$S/guard.crt" "$S/ca.crt"
n_err kown "$tmp/kown.conf:5: key $S/own.key: refusing a private key that its group may read (mode 0640, owner uid $(id -u "$U"), group gid $(id -g "$U")): make it root's in group $(id -g "$U") of user $U (chown 0:$(id -g "$U")), or run: chmod 600 $S/own.key"

svc u
expect "service layout: configuration OK" "configuration OK" sh -c "'$B' guard -n -c '$tmp/u.conf' 2>&1"
if ! start_guard u; then
	no "guard starts as $U" "$(cat "$tmp/u.log")"
	done_tests
	exit 1
fi
check "guard runs as $U" grep -q "running as user $U" "$tmp/u.log"
A=$tmp/svc/audit/a.jsonl
gw_tunnel_conf t "$u_tls" operator1
start_tunnel t || no "tunnel starts" "$(cat "$tmp/t.log")"
expect "reads through the tunnel" "ok 180" mbc "$t_port" read 100 1

# every reload is a record: a policy reload with the hash before and after
kill -HUP "$u_pid"
wait_log "$A" '"kind":"certs_reloaded"' 5
check "SIGHUP: policy_loaded with prev_hash equal to hash (unchanged)" sh -c "jq -e -s '[.[] | select(.kind==\"policy_loaded\" and (.prev_hash|length)==64 and .prev_hash==.hash)] | length == 1' $A"
printf '# a comment changes the hash\n' >>"$S/site.policy"
kill -HUP "$u_pid"
for _ in $(seq 1 250); do [ "$(audit_count "$A" '.kind=="certs_reloaded"')" -ge 2 ] && break; sleep 0.02; done
check "SIGHUP: policy_loaded with prev_hash and a new hash" sh -c "jq -e -s '[.[] | select(.kind==\"policy_loaded\" and (.prev_hash|length)==64 and .prev_hash!=.hash)] | length == 1' $A"
good_hash=$(jq -r 'select(.kind=="policy_loaded") | .hash' "$A" | tail -1)
printf 'allow operators wrtie ahu\n' >>"$S/site.policy"
kill -HUP "$u_pid"
check "broken policy: the reload fails loudly" wait_log "$tmp/u.log" "policy reload failed: keeping the running policy" 5
check "broken policy: a reload_failed record with the error's file:line and the hash in force" \
	sh -c "jq -e -s '[.[] | select(.kind==\"reload_failed\" and .hash==\"$good_hash\" and (.detail|test(\"site.policy:[0-9]+:[0-9]+: error\")))] | length == 1' $A"
cp "$tmp/site.policy" "$S/site.policy"

# revocation after the drop: the guard, as $U, re-reads the CRL and refuses the revoked one
gw_tunnel_conf tl "$u_tls" live1
start_tunnel tl || no "live1 tunnel starts" "$(cat "$tmp/tl.log")"
expect "live1 reads before it is revoked" "ok 180" mbc "$tl_port" read 100 1
before=$(count_log "$tmp/u.log" "reloaded CRL")
"$B" pki revoke "$P" live1 --reason key-compromise >/dev/null && cp "$P/crl.pem" "$S/crl.pem"
for _ in $(seq 1 250); do [ "$(count_log "$tmp/u.log" "reloaded CRL")" -gt "$before" ] && break; sleep 0.02; done
check "the guard as $U re-read the new CRL" test "$(count_log "$tmp/u.log" "reloaded CRL")" -gt "$before"
got=$(mbc "$tl_port" read 100 1)
if [ "$got" != "ok 180" ]; then ok "live1, revoked after start-up, is refused ($got)"; else no "live1, revoked after start-up, is refused" "$got"; fi

# a CRL the user can no longer read: stale, audited, new sessions refused (crl-stale refuse)
chmod 600 "$S/crl.pem"
check "unreadable CRL: logged loudly as stale" wait_log "$tmp/u.log" "CRL $S/crl.pem is stale .*refused until it loads \(crl-stale refuse\)" 5
check "unreadable CRL: a reload_failed record saying why" wait_log "$A" '"kind":"reload_failed".*Permission denied.*crl-stale refuse' 5
got=$(mbc "$t_port" read 100 1)
if [ "$got" != "ok 180" ]; then ok "stale CRL (refuse): a new session is refused ($got)"; else no "stale CRL (refuse): a new session is refused" "$got"; fi
check "stale CRL (refuse): the refusal is audited with the reason" wait_log "$A" '"kind":"conn_refused".*operator1.*revocation list cannot be refreshed' 5
chmod 644 "$S/crl.pem"
check "readable again: the CRL is fresh" wait_log "$tmp/u.log" "is fresh again: new TLS sessions are accepted" 5
expect "readable again: new sessions work" "ok 180" mbc "$t_port" read 100 1

# the guard's device no longer in the policy: the reload is taken (a site may cut a device off
# that way), with a warning, and the deny names what could not be placed
sed -i "s/^device ahu modbus 127.0.0.1 port $sim_port unit 1 {/device ahu modbus 127.0.0.1 port $other unit 1 {/" "$S/site.policy"
kill -HUP "$u_pid"
check "policy without the guard's device: a warning naming it" wait_log "$tmp/u.log" "device 'ahu': no device in the policy is declared at 127.0.0.1 port $sim_port unit 1" 5
for _ in $(seq 1 250); do [ "$(audit_count "$A" '.kind=="policy_loaded" and (.detail|test("warning"))')" -ge 1 ] && break; sleep 0.02; done
check "policy without the guard's device: policy_loaded says so" sh -c "test \$(jq -c 'select(.kind==\"policy_loaded\" and (.detail|test(\"warning: .*ahu.*port $sim_port unit 1\")))' $A | wc -l) -eq 1"
expect "undeclared device: exception 01" "exception 0x01" mbc "$t_port" read 100 1
check "undeclared device: the deny reason names address, port and unit" wait_log "$A" "\"reason\":\"no device is declared at 127.0.0.1 port $sim_port unit 1 in the policy \\(guard device 'ahu'\\)\"" 5
cp "$tmp/site.policy" "$S/site.policy"
kill -HUP "$u_pid"
kill -TERM "$u_pid"
wait_gone "$u_pid" 10

# crl-stale keep: a CRL that cannot be re-read is kept, loudly; sessions go on
svc k "$S/audit/k.jsonl" "crl-stale keep"
start_guard k || no "guard (crl-stale keep) starts" "$(cat "$tmp/k.log")"
K=$S/audit/k.jsonl
gw_tunnel_conf tk "$k_tls" operator1
start_tunnel tk || no "tunnel to the keep guard starts" "$(cat "$tmp/tk.log")"
expect "keep: reads" "ok 180" mbc "$tk_port" read 100 1
cp "$S/crl.pem" "$tmp/crl.good"
printf 'not a CRL\n' >"$S/crl.pem"
check "keep: a CRL that does not load is logged as stale, kept" wait_log "$tmp/k.log" "CRL $S/crl.pem is stale .*last good CRL \(crl-stale keep\)" 5
check "keep: a reload_failed record" wait_log "$K" '"kind":"reload_failed".*cannot load a CRL.*crl-stale keep' 5
expect "keep: new sessions still work" "ok 180" mbc "$tk_port" read 100 1
cp "$tmp/crl.good" "$S/crl.pem"
wait_log "$tmp/k.log" "is fresh again" 5

# a CRL whose nextUpdate passes while the guard runs (keep: accepted, loudly; -n with refuse: an error)
if $PY - "$P/ca.crt" "$P/ca.key" "$S/crl.pem" <<'PYEOF'; then
import sys, datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
     .last_update(now - datetime.timedelta(minutes=1)).next_update(now + datetime.timedelta(seconds=3)))
open(sys.argv[3] + ".new", "wb").write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
PYEOF
	chmod 644 "$S/crl.pem.new" && mv "$S/crl.pem.new" "$S/crl.pem"
	svc refuse "$S/audit/r.jsonl"
	expect "a CRL before its nextUpdate: configuration OK" "configuration OK" sh -c "'$B' guard -n -c '$tmp/refuse.conf' 2>&1"
	check "keep: the short-lived CRL is loaded" wait_log "$tmp/k.log" "reloaded CRL" 5
	check "keep: its nextUpdate passing is logged as stale" wait_log "$tmp/k.log" "CRL $S/crl.pem is stale \(its nextUpdate .* has passed" 10
	check "keep: and audited" wait_log "$K" '"kind":"reload_failed".*nextUpdate.*has passed' 5
	expect "keep: an expired CRL still lets sessions in" "ok 180" mbc "$tk_port" read 100 1
	n_err refuse "$tmp/refuse.conf:7: crl $S/crl.pem: its nextUpdate ($(openssl crl -in "$S/crl.pem" -noout -nextupdate -dateopt iso_8601 | sed 's/^nextUpdate=//; s/ /T/')) has passed: every TLS client would be refused (crl-stale refuse); issue a fresh CRL ('bmsgate pki crl DIR')"
	expect "keep: an expired CRL is no -n error" "configuration OK" sh -c "'$B' guard -n -c '$tmp/k.conf' 2>&1"
else
	no "a short-lived CRL (python3-cryptography)" "$(tail -3 "$tmp/out" 2>/dev/null)"
fi
kill -TERM "$k_pid"
wait_gone "$k_pid" 10
check "diagnostics stay out of the audit trail" sh -c "! grep -q 'bmsgate guard' $A $K"
check "audit verify: the trail with reload_failed and prev_hash records is intact" "$B" audit verify "$A" --key "$tmp/audit.pub"
check "audit query reads the new kind" sh -c "'$B' audit query '$K' 2>&1 | grep -q reload_failed"
done_tests
