#!/usr/bin/env bash
# The evaluator does not allocate: every function policies/eval.c calls outside itself must
# be on this list of functions known not to allocate (libc string and formatting functions,
# and the engine's own pure helpers). Adding a call to malloc, a lock, I/O or any new
# function to eval.c fails this test until it is reviewed and listed here.
set -u
cd "$(dirname "$0")/../.."
obj=build/rel/policies/eval.o
echo "1..2"
if [ ! -f "$obj" ]; then
	echo "not ok 1 - $obj is not built"
	echo "not ok 2 - # not run"
	exit 1
fi
# pol_tz_offset is a binary search over the transitions read at compile time (tz.c); bms_anomaly_name reads a table.
allowed=" __memcpy_chk __stack_chk_fail __vsnprintf_chk vsnprintf memcpy memcmp memset memmove strcmp strlen strnlen "
allowed+=" inet_ntop bms_anomaly_name pol_fmt_num pol_hash pol_object_types pol_properties pol_tz_offset pol_word_name "
bad=""
for s in $(nm -u "$obj" | awk '{print $2}'); do
	case "$allowed" in *" $s "*) ;; *) bad="$bad $s" ;; esac
done
if [ -z "$bad" ]; then echo "ok 1 - eval.o calls only non-allocating functions"; else
	echo "not ok 1 - eval.o calls functions not known to be allocation-free:$bad"; fi
# The helpers eval.o relies on are pure too: pol_fmt_num and pol_hash live in vocab.o, which calls no allocator.
vbad=$(nm -u build/rel/policies/vocab.o | awk '{print $2}' | grep -E '^(malloc|calloc|realloc|free|strdup|fopen)$' || true)
if [ -z "$vbad" ]; then echo "ok 2 - vocab.o (formatting, hashing, names) calls no allocator"; else
	echo "not ok 2 - vocab.o calls:$vbad"; fi
[ -z "$bad" ] && [ -z "$vbad" ]
