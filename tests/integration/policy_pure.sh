#!/usr/bin/env bash
# The policy compiler is pure: it opens no file, resolves no path and reads no zoneinfo;
# a policy source does that (load/policy_files.c). Two checks:
#  1. no object of policies/ imports a file-system or environment function (as the linker sees
#     them), and the file-system source (load/) does;
#  2. the policy fuzz target, replayed over its corpus under strace, opens nothing but its
#     inputs and what the dynamic loader and the sanitizers open (shared libraries, /proc).
set -u
cd "$(dirname "$0")/../.."
echo "1..3"
fsfuncs="fopen fopen64 open open64 openat openat64 realpath stat stat64 fstat fstat64 lstat access faccessat opendir getenv secure_getenv fread read"
fail=0
# every object of policies/ (the file-system source is load/policy_files.c, the command cmd/)
# (from the sources, so that an object a moved file left in an old build is not counted)
objs=()
for c in policies/*.c; do objs+=("build/rel/${c%.c}.o"); done
bad=""
for o in "${objs[@]}"; do
	[ -f "$o" ] || { bad="$bad $(basename "$o"):not-built"; continue; }
	for s in $(nm -u "$o" | awk '{print $2}'); do
		case " $fsfuncs " in *" $s "*) bad="$bad $(basename "$o"):$s" ;; esac
	done
done
if [ ${#objs[@]} -lt 10 ]; then echo "not ok 1 - only ${#objs[@]} objects of policies/ are built"; fail=1;
elif [ -z "$bad" ]; then echo "ok 1 - the ${#objs[@]} objects of the compiler and evaluator call no file-system function"; else
	echo "not ok 1 - file-system calls in policies/:$bad"; fail=1; fi
# and the negative beside it: the file-system source is the one that does
src=build/rel/load/policy_files.o
if nm -u "$src" 2>/dev/null | awk '{print $2}' | grep -qx fopen; then echo "ok 2 - load/policy_files.o, the file-system source, is where files are opened"; else
	echo "not ok 2 - load/policy_files.o opens no file: is the check above looking at the right objects?"; fail=1; fi
r=build/asan/fuzz-replay/policy
if ! command -v strace >/dev/null; then
	echo "ok 3 # SKIP strace is not installed (deps/debian-packages.txt lists it)"
	exit $fail
fi
inputs=()
while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find fuzz/corpus/policy fuzz/regressions/policy -type f ! -name '.*' -print0 2>/dev/null | sort -z)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# LeakSanitizer cannot run under ptrace; leaks are checked by the plain replay in tests/run
if ! ASAN_OPTIONS=detect_leaks=0 strace -f -qq -s 4096 -e trace=open,openat,stat,lstat,newfstatat,access,faccessat2,readlink -o "$log" "$r" "${inputs[@]}" >/dev/null 2>&1; then
	echo "not ok 3 - $r failed over its corpus"
	exit 1
fi
# every path the process named, opened or not, less the inputs and what is read before main:
# the loader's, the sanitizers' (/proc, the binary itself), libnl-route's constructor (/etc/libnl)
self=$(readlink -f "$r")
stray=$(grep -o '"[^"]*"' "$log" | tr -d '"' | sort -u | while IFS= read -r p; do
	case "$p" in
	"" | /proc/* | /lib/* | /lib64/* | /usr/lib/* | /etc/ld.so.* | /etc/libnl/* | /dev/* | /sys/*) continue ;;
	"$self") continue ;;
	esac
	printf '%s\n' "${inputs[@]}" | grep -qxF -- "$p" && continue
	echo "$p"
done)
if [ -z "$stray" ]; then echo "ok 3 - the policy fuzz target opens only its ${#inputs[@]} inputs"; else
	echo "not ok 3 - the policy fuzz target touched files beyond its inputs: $(echo $stray)"; fail=1; fi
exit $fail
