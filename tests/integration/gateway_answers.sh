#!/usr/bin/env bash
# Answers from devices are checked too (issue 11): a device that answers with a wrong byte count,
# a too-long answer, a wrong echo, an undefined exception code, and correct answers, behind a
# live guard. With the default `answers check` the client gets exception 0B for every bad answer
# and the device's own bytes for the good ones; the audit trail records each bad one as
# `bad_answer` with its anomalies and what was wrong. With `answers pass` the bad answer reaches
# the client unchanged and is still audited. The client is a raw socket on the legacy plain
# listener, so the test sees exactly the bytes the guard sends.
. "$(dirname "$0")/lib/gw.sh"

if why=$(gw_engine_missing); then
	skip "gateway answers: $why"
	done_tests
	exit 0
fi
"$B" audit keygen "$tmp/audit.key" "$tmp/audit.pub" >/dev/null || no "audit key"
$PY tests/integration/lib/bad_device.py "$tmp/dev.ready" >"$tmp/dev.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 250); do [ -s "$tmp/dev.ready" ] && break; sleep 0.02; done
dev_port=$(cut -d: -f2 "$tmp/dev.ready")
cat >"$tmp/site.policy" <<POL
device checked modbus 127.0.0.1 port $dev_port unit 1
device passed modbus 127.0.0.1 port $dev_port unit 2
role lan {
  address 127.0.0.0/8
}
allow lan read checked
allow lan write checked
allow lan read passed
allow lan write passed
POL
chmod 600 "$tmp/site.policy"
g_plain=$(free_port)
cat >"$tmp/g.conf" <<CONF
listen plain 127.0.0.1:$g_plain allow 127.0.0.1
policy $tmp/site.policy
device checked {
  address 127.0.0.1:$dev_port
  units 1
  response-timeout 2s
}
device passed {
  address 127.0.0.1:$dev_port
  units 2
  response-timeout 2s
  answers pass
}
audit {
  file $tmp/g.audit.jsonl
  key $tmp/audit.key
  sync 5ms
  results all
}
CONF
A=$tmp/g.audit.jsonl
check "guard -n accepts 'answers pass' and the default" "$B" guard -n -c "$tmp/g.conf"
if ! start_guard g; then
	no "guard starts" "$(cat "$tmp/g.log")"
	done_tests
	exit 1
fi
rc() { timeout 20 $PY tests/integration/lib/raw_client.py "$g_plain" "$@" 2>&1; }
# --- answers check (the default) ---
expect "check: a correct FC 3 answer reaches the client as the device sent it" \
	"000100000005010302002a" rc 1 1 0300640001
expect "check: byte count 127 with one byte of data -> exception 0B" \
	"00020000000301830b" rc 2 1 0300650001
expect "check: 252 bytes of PDU for a one-register read -> exception 0B" \
	"00030000000301830b" rc 3 1 0300660001
expect "check: an exception with code 0x55 -> exception 0B" \
	"00040000000301830b" rc 4 1 0300670001
expect "check: FC 6 with a wrong echo -> exception 0B" \
	"00050000000301860b" rc 5 1 0600640005
expect "check: FC 6 with the right echo reaches the client" \
	"000600000006010600650007" rc 6 1 0600650007

# the audit trail: each bad answer is a result record `bad_answer` that says what was wrong
audit_has() { local name=$1 filter=$2; if [ "$(audit_count "$A" "$filter")" -ge 1 ]; then ok "$name"; else no "$name" "$(jq -c 'select(.kind=="result")' "$A" | tail -12)"; fi; }
for _ in $(seq 1 250); do [ "$(audit_count "$A" '.kind=="result"')" -ge 6 ] && break; sleep 0.02; done
audit_has "audit: byte count 127 is bad_answer with byte_count_mismatch and response_count_mismatch" \
	'.kind=="result" and .result=="bad_answer" and (.anomalies|index("byte_count_mismatch")) and (.anomalies|index("response_count_mismatch")) and .detail=="function 3 answer: byte count 127, want 2; answered 0B"'
audit_has "audit: the 252-byte answer is bad_answer (byte count 250, want 2)" \
	'.kind=="result" and .result=="bad_answer" and .anomalies==["response_count_mismatch"] and .detail=="function 3 answer: byte count 250, want 2; answered 0B"'
audit_has "audit: exception code 0x55 is bad_answer (unknown_exception_code)" \
	'.kind=="result" and .result=="bad_answer" and .anomalies==["unknown_exception_code"] and .detail=="function 3 answer: exception code 85; answered 0B"'
audit_has "audit: the wrong echo is bad_answer (response_echo_mismatch, the byte that differs)" \
	'.kind=="result" and .result=="bad_answer" and .anomalies==["response_echo_mismatch"] and .detail=="function 6 answer: echoed byte 6, want 5; answered 0B"'
expect "audit: the two good answers are ok, without anomalies" "2" \
	sh -c "jq -c 'select(.kind==\"result\" and .result==\"ok\" and (has(\"anomalies\")|not))' '$A' | wc -l"
expect "audit: no bad answer was recorded as ok or exception" "4" \
	sh -c "jq -c 'select(.kind==\"result\" and .result==\"bad_answer\")' '$A' | wc -l"
check "guard log names the device and what was wrong" grep -q "device checked: function 3 answer: byte count 127, want 2; answered 0B" "$tmp/g.log"

# --- answers pass: the bad answer reaches the client unchanged, and is still audited ---
big=$($PY -c 'print("000b000000fd0203fa" + bytes(range(250)).hex())')
expect "pass: byte count 127 with one byte reaches the client unchanged" \
	"000a0000000402037f00" rc 10 2 0300650001
expect "pass: the 252-byte answer reaches the client unchanged" "$big" rc 11 2 0300660001
expect "pass: the wrong echo reaches the client unchanged" \
	"000c000000060206006400ff" rc 12 2 06006400fe
expect "pass: a correct answer is relayed too" "000d00000005020302002a" rc 13 2 0300640001
for _ in $(seq 1 250); do [ "$(audit_count "$A" '.kind=="result" and .result=="bad_answer"')" -ge 7 ] && break; sleep 0.02; done
audit_has "audit (pass): byte count 127 is still bad_answer, marked passed on" \
	'.kind=="result" and .result=="bad_answer" and .detail=="function 3 answer: byte count 127, want 2; passed on"'
audit_has "audit (pass): the 252-byte answer is still bad_answer" \
	'.kind=="result" and .result=="bad_answer" and .detail=="function 3 answer: byte count 250, want 2; passed on"'
audit_has "audit (pass): the wrong echo is still bad_answer" \
	'.kind=="result" and .result=="bad_answer" and .anomalies==["response_echo_mismatch"] and .detail=="function 6 answer: echoed byte 255, want 254; passed on"'
check "audit log verifies" "$B" audit verify "$A" --key "$tmp/audit.pub"
done_tests
