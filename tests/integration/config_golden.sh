#!/usr/bin/env bash
# Golden tests for the gateway config's errors, as `bmsgate guard -n` (or `tunnel -n` for
# tests/config-golden/tunnel-*.conf) prints them to a person: every tests/config-golden/NAME.conf
# that has a NAME.expected is checked, and its output (stdout and stderr, then "exit: N") must
# equal NAME.expected byte for byte. The files are broken on purpose: the grammar stops them
# before any file they name is opened.
# `tests/integration/config_golden.sh --bless` rewrites the .expected files: review the diff!
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
cases=()
for f in tests/config-golden/*.conf; do
	{ [ -f "${f%.conf}.expected" ] || [ $bless -eq 1 ]; } && cases+=("$f")
done
echo "1..$((${#cases[@]} + 1))"
n=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for f in "${cases[@]}"; do
	n=$((n + 1))
	exp=${f%.conf}.expected
	cmd=guard
	case "$(basename "$f")" in tunnel-*) cmd=tunnel ;; esac
	"$bin" "$cmd" -n -c "$f" >"$tmp" 2>&1 </dev/null
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
# the negative beside them: a golden file that is no longer broken no longer matches
n=$((n + 1))
f=tests/config-golden/tunnel-errors.conf
fixed=$(mktemp --suffix=.conf)
trap 'rm -f "$tmp" "$fixed"' EXIT
printf 'listen 127.0.0.1:1502\nguard 127.0.0.1:802\ncertificate c\nkey k\nca a\n' >"$fixed"
"$bin" tunnel -n -c "$fixed" >"$tmp" 2>&1 </dev/null
echo "exit: $?" >>"$tmp"
if [ -f "${f%.conf}.expected" ] && ! cmp -s "$tmp" "${f%.conf}.expected" && ! grep -q ': error: ' "$tmp"; then
	echo "ok $n - a file without grammar errors gives none (and does not match a golden)"
else
	echo "not ok $n - a fixed file still gives grammar errors or matches the golden"
	sed 's/^/# /' "$tmp"
fi
