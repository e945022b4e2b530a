#!/usr/bin/env bash
# Golden tests for `bmsgate policy check`: every tests/policy-golden/NAME.policy that has a
# NAME.expected is checked, and its output (stdout and stderr, then "exit: N") must equal
# NAME.expected byte for byte. Files without .expected are only included by others.
# `tests/integration/policy_golden.sh --bless` rewrites the .expected files: review the diff!
set -u
cd "$(dirname "$0")/../.."
bin=build/bmsgate
bless=0
[ "${1:-}" = "--bless" ] && bless=1
if [ ! -x "$bin" ]; then
	echo "1..1"
	echo "not ok 1 - $bin is not built"
	exit 1
fi
# A fresh clone under umask 002 gives group-writable files, which check rightly refuses.
chmod go-w tests/policy-golden/*.policy
cases=()
for f in tests/policy-golden/*.policy; do
	[ -f "${f%.policy}.expected" ] || [ $bless -eq 1 ] && [[ "$f" != *-part.policy ]] && cases+=("$f")
done
echo "1..${#cases[@]}"
n=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for f in "${cases[@]}"; do
	n=$((n + 1))
	exp=${f%.policy}.expected
	"$bin" policy check "$f" >"$tmp" 2>&1
	echo "exit: $?" >>"$tmp"
	if [ $bless -eq 1 ]; then
		cp "$tmp" "$exp"
		echo "ok $n - $f (blessed)"
	elif cmp -s "$tmp" "$exp"; then
		echo "ok $n - $f"
	else
		echo "not ok $n - $f: output differs from $exp"
		diff -u "$exp" "$tmp" | sed 's/^/# /'
	fi
done
