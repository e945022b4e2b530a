#!/usr/bin/env bash
# `bmsgate policy check|explain` end to end on the shipped examples: the examples compile
# without a warning, explain gives the decision, rule and reason, and check refuses a file
# that others may write or that another user owns.
set -u
cd "$(dirname "$0")/../.."
bin=$PWD/build/bmsgate
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod go-w policies/examples/*.policy


for f in policies/examples/*.policy; do
	out=$("$bin" policy check "$f" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [[ "$out" == "policy OK:"*", 0 warnings" ]]; then ok "check $f: clean"; else notok "check $f: rc=$rc: $out"; fi
done

hvac=policies/examples/hvac-plant.policy
pol=$hvac
# explain EXPECTED_EXIT "EXPECTED OUTPUT" ARGS...
explain() {
	local want_rc=$1 want=$2
	shift 2
	local out rc
	out=$("$bin" policy explain "$pol" "$@" 2>&1)
	rc=$?
	if [ $rc -eq "$want_rc" ] && [ "$out" = "$want" ]; then ok "explain ${*: -1}"; else
		notok "explain ${*: -1}: rc=$rc"
		echo "$out" | sed 's/^/#   got: /'
		echo "$want" | sed 's/^/#  want: /'
	fi
}
explain 0 "decision: allow
rule:     $hvac:82
reason:   allow operator write ahu1.supply_air_setpoint value 18..26 limit 10 per minute min-interval 5s" \
	--role operator --time "2026-06-10 10:00" "write ahu1.supply_air_setpoint 24.5"
explain 1 "decision: deny
rule:     $hvac:82
reason:   write 45.0 degC to ahu1.supply_air_setpoint outside the allowed 18.0..26.0" \
	--role operator --time "2026-06-10 10:00" "write ahu1.supply_air_setpoint 45"
# The engineer's rule has no value limit of its own: the point's range speaks.
explain 1 "decision: deny
rule:     $hvac:96
reason:   write 45.0 degC to ahu1.supply_air_setpoint above its limit 30.0" \
	--subject "CN=hvac-service-laptop,O=Cool Air GmbH" --time "2026-06-10 10:00" "write ahu1.supply_air_setpoint 45"
explain 1 "decision: deny
rule:     none (deny by default)
reason:   no rule allows role engineer to write ahu1.supply_air_setpoint at this time ($hvac:96 allows it at other times)" \
	--subject "CN=hvac-service-laptop,O=Cool Air GmbH" --time "2026-06-10 20:00" "write ahu1.supply_air_setpoint 24"
explain 0 "decision: allow
rule:     $hvac:82
reason:   allow operator write ahu1.supply_air_setpoint value 18..26 limit 10 per minute min-interval 5s" \
	--cert-role operator --time "2026-06-10 10:00" "modbus fc 6 unit 1 addr 100 value 245 device ahu1"
explain 1 "decision: deny
rule:     $hvac:87
reason:   write to vav3.zone_setpoint at priority 5 outside the allowed 8..16" \
	--role operator "bacnet writeProperty analog-value 1 present-value 21.5 priority 5 device vav3"
explain 1 "decision: deny
rule:     $hvac:91
reason:   role operator may not write ahu1.fan_enable" \
	--role operator --time "2026-03-29 23:30" "write ahu1.fan_enable on"
explain 0 "decision: allow
rule:     $hvac:79
reason:   allow operator, engineer, energy_monitor read" \
	--address 10.10.9.7 "read ahu1.supply_air_temp"
explain 1 "decision: deny
rule:     none (deny by default)
reason:   no rule allows address 10.10.9.77 to read ahu1.supply_air_temp" \
	--address 10.10.9.77 "read ahu1.supply_air_temp"
# Raw Modbus requests go through the real decoder: a read of 200 registers is flagged and denied.
explain 1 "decision: deny
rule:     none (deny by default)
reason:   the decoder flagged this request (bad_quantity): it cannot be checked" \
	--role engineer "modbus fc 3 unit 1 addr 100 count 200 device ahu1"
# BACnet requests too: priority 17 does not exist, and the BACnet decoder says so.
explain 1 "decision: deny
rule:     none (deny by default)
reason:   the decoder flagged this request (bad_priority): it cannot be checked" \
	--role operator "bacnet writeProperty analog-value 1 present-value 21.5 priority 17 device vav3"
# FC 16 over two points: each is held to its own range.
explain 1 "decision: deny
rule:     $hvac:96
reason:   write 5.0 degC to ahu1.supply_air_setpoint below its limit 15.0" \
	--role engineer --time "2026-06-10 10:00" "modbus fc 16 unit 1 addr 100 count 2 value 50 device ahu1"
# The chiller runs in monitor mode: a deny is recorded as monitor-deny.
explain 1 "decision: monitor-deny
rule:     none (deny by default)
reason:   no rule allows role operator to write chiller1.chilled_water_setpoint" \
	--role operator "write chiller1.chilled_water_setpoint 7"

acc=policies/examples/access-control.policy
pol=$acc
explain 0 "decision: allow
rule:     $acc:82
reason:   allow visitor_desk write doors.main_entrance value on during opening_hours min-interval 15s" \
	--address 10.20.5.30 --time "2026-06-12 15:00" "write doors.main_entrance on"
# Saturday 15:00 is outside opening hours: the catch-all deny of writes decides.
explain 1 "decision: deny
rule:     $acc:103
reason:   role visitor_desk may not write doors.main_entrance" \
	--address 10.20.5.30 --time "2026-06-13 15:00" "write doors.main_entrance on"
explain 1 "decision: deny
rule:     $acc:87
reason:   role guard_tablet may not write doors.loading_dock" \
	--fingerprint 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 --time "2026-06-12 23:00" \
	"write doors.loading_dock on"
# The intrusion panel follows the site's monitor mode.
explain 1 "decision: monitor-deny
rule:     $acc:104
reason:   role security_desk may not manage intrusion" \
	--role security_desk "bacnet reinitializeDevice"

# Includes: a site file that includes its devices and roles from a subfolder.
mkdir -p "$tmp/site/parts"
cat >"$tmp/site/parts/devices.policy" <<'POL'
device ahu1 modbus 10.0.0.21 unit 1 {
    point sp holding 100 int16 scale 0.1 unit degC range 15..30
}
POL
cat >"$tmp/site/main.policy" <<'POL'
include "parts/devices.policy"
allow operator write ahu1.sp
POL
chmod 644 "$tmp/site/parts/devices.policy" "$tmp/site/main.policy"
out=$("$bin" policy explain "$tmp/site/main.policy" --cert-role operator "write ahu1.sp 31" 2>&1)
if [ $? -eq 1 ] && [ "$out" = "decision: deny
rule:     $tmp/site/main.policy:2
reason:   write 31.0 degC to ahu1.sp above its limit 30.0" ]; then ok "include: a device from an included file"; else
	notok "include: $out"; fi

# Refusals: group-writable, world-writable, owned by another user.
cp "$hvac" "$tmp/site.policy"
chmod 664 "$tmp/site.policy"
out=$("$bin" policy check "$tmp/site.policy" 2>&1)
if [ $? -eq 1 ] && [[ "$out" == *"refusing a policy file that its group may write (mode 0664); run: chmod go-w $tmp/site.policy"* ]]; then
	ok "check refuses a group-writable file"; else notok "group-writable accepted: $out"; fi
chmod 646 "$tmp/site.policy"
out=$("$bin" policy check "$tmp/site.policy" 2>&1)
if [ $? -eq 1 ] && [[ "$out" == *"refusing a policy file that anyone may write (mode 0646)"* ]]; then
	ok "check refuses a world-writable file"; else notok "world-writable accepted: $out"; fi
chmod 644 "$tmp/site.policy"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	chown nobody "$tmp/site.policy"
	out=$("$bin" policy check "$tmp/site.policy" 2>&1)
	if [ $? -eq 1 ] && [[ "$out" == *"refusing a policy file owned by uid $(id -u nobody) while running as uid 0"* ]]; then
		ok "check refuses a file another user owns"; else notok "foreign owner accepted: $out"; fi
else
	ok "# SKIP needs root and a 'nobody' user to hand the file to"
fi
# explain names a misspelt role's nearest declared role through the one suggester, and
# suggests nothing for a name close to none.
out=$("$bin" policy explain "$hvac" --role operater "read ahu1.supply_air_temp" 2>&1)
if [ $? -eq 2 ] && [ "$out" = "policy explain: no role 'operater' in this policy; did you mean 'operator'?" ]; then
	ok "explain suggests the declared role"; else notok "explain misspelt role: $out"; fi
# three edits in an 8-letter word: close, as `policy check` counts it (the old copy allowed two)
out=$("$bin" policy explain "$hvac" --role oxxxator "read ahu1.supply_air_temp" 2>&1)
if [ "$out" = "policy explain: no role 'oxxxator' in this policy; did you mean 'operator'?" ]; then
	ok "explain uses check's distance rule"; else notok "explain distance: $out"; fi
out=$("$bin" policy explain "$hvac" --role zzz "read ahu1.supply_air_temp" 2>&1)
if [ "$out" = "policy explain: no role 'zzz' in this policy" ]; then
	ok "explain suggests nothing for a role close to none"; else notok "explain unknown role: $out"; fi
# A broken file: check and explain show the source line with carets under the word; the
# message line itself is the one-line form.
printf 'site "x"\n\tdevise ahu1 modbus 10.0.0.1 unit 1\n' >"$tmp/broken.policy"
chmod 600 "$tmp/broken.policy"
want=$(printf '%s\n\t%s\n\t%s' "$tmp/broken.policy:2:2: error: unknown statement 'devise'; did you mean 'device'?" \
	"devise ahu1 modbus 10.0.0.1 unit 1" "^^^^^^")
out=$("$bin" policy check "$tmp/broken.policy" 2>&1)
if [ $? -eq 1 ] && [ "$(echo "$out" | head -3)" = "$want" ]; then ok "check shows the line and carets"; else
	notok "check caret form: $out"; fi
out=$("$bin" policy explain "$tmp/broken.policy" --role a "read x.y" 2>&1)
if [ "$(echo "$out" | head -3)" = "$want" ]; then ok "explain shows a broken file's line and carets"; else
	notok "explain caret form: $out"; fi
echo "1..$n"
[ $fails -eq 0 ]
