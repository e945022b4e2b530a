#!/usr/bin/env bash
# `bmsgate policy diff OLD NEW` on the HVAC example and an edited copy: every change made
# to the copy is reported in plain words, in the right direction, and nothing else.
set -u
cd "$(dirname "$0")/../.."
bin=$PWD/build/bmsgate
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
old=$tmp/old.policy new=$tmp/new.policy
cp policies/examples/hvac-plant.policy "$old"
# The edits: a wider operator setpoint band, longer office hours, a lower BACnet priority
# allowed on vav4, the chiller out of monitor mode, the fan no longer switchable by operators.
sed -e 's/^    value 18..26$/    value 18..28/' \
	-e 's/^schedule office_hours   mon-fri 07:00-19:00/schedule office_hours   mon-fri 07:00-20:00/' \
	-e 's/^allow operator write vav4.zone_setpoint priority 8..16/allow operator write vav4.zone_setpoint priority 6..16/' \
	-e 's/^device chiller1 modbus 10.10.1.22 unit 2 mode monitor {/device chiller1 modbus 10.10.1.22 unit 2 {/' \
	-e 's/^allow operator write ahu1.fan_enable$/deny operator write ahu1.fan_enable/' \
	policies/examples/hvac-plant.policy >"$new"
chmod 644 "$old" "$new"

out=$("$bin" policy diff "$old" "$new" 2>&1)
rc=$?
[ $rc -eq 1 ] && ok "diff exits 1 when the files differ" || notok "diff exit status $rc"
has() { # has "DESCRIPTION" "EXACT LINE" [after-line]: the exact line is in the output
	if grep -qxF -- "$2" <<<"$out"; then ok "$1"; else notok "$1: missing line: $2"; echo "$out" | sed 's/^/#   /'; fi
}
section() { # the lines of one section
	awk -v h="$1" '$0 ~ "^"h {on=1; next} /^[A-Z]/ {on=0} on' <<<"$out"
}
plus=$(section "NEW allows what OLD denied")
minus=$(section "OLD allowed what NEW denies")
other=$(section "Other changes")
grep -qxF "  role operator: write ahu1.supply_air_setpoint" <<<"$plus" && grep -qxF "      values: 26.1 degC, 28.0 degC" <<<"$plus" &&
	ok "wider setpoint band: 26.1 and 28.0 degC newly allowed" || notok "setpoint band change not reported: $plus"
grep -qxF "      at: mon 19:00-20:00, tue 19:00-20:00, wed 19:00-20:00, thu 19:00-20:00, fri 19:00-20:00 (site time)" <<<"$plus" &&
	ok "longer office hours: the new hour is reported" || notok "office hours change not reported"
grep -qxF "  role operator: write vav4.zone_setpoint" <<<"$plus" && grep -qxF "      priorities: 7, 6" <<<"$plus" &&
	ok "priorities 6 and 7 newly allowed on vav4" || notok "priority change not reported"
grep -qxF "  role operator: write ahu1.fan_enable" <<<"$minus" &&
	ok "fan switch: reported as allowed before, denied now" || notok "fan deny not reported: $minus"
grep -qxF "  device chiller1: mode monitor -> enforce" <<<"$other" &&
	ok "chiller mode change listed" || notok "mode change not listed: $other"
# Nothing unrelated: vav3 and reads were not touched.
if grep -q "vav3\|: read " <<<"$out"; then notok "unrelated differences reported"; else ok "no unrelated difference"; fi

out=$("$bin" policy diff "$old" "$old" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -qxF "NEW allows what OLD denied: nothing" <<<"$out" &&
	grep -qxF "OLD allowed what NEW denies: nothing" <<<"$out"; then ok "a file against itself: no difference, exit 0"; else
	notok "self diff: rc=$rc"; fi
echo "1..$n"
[ $fails -eq 0 ]
