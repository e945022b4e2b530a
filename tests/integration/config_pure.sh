#!/usr/bin/env bash
# The gateway config grammar (proxy/config.c) is pure over text: it opens no file, resolves
# no host name and asks no system for its name; proxy/config_file.c, the reader, does. Checks:
#  1. config.o imports no file-system, resolver or host-name function (as the linker sees them);
#  2. and the negative beside it: config_file.o is where they are;
#  3. the config fuzz target, replayed over its corpus under strace, opens nothing but its inputs
#     and what the loader and the sanitizers open, and makes no socket (no resolver was asked).
set -u
cd "$(dirname "$0")/../.."
echo "1..3"
funcs="fopen fopen64 open open64 openat openat64 stat stat64 fstat fstat64 lstat access opendir getenv secure_getenv fread read getaddrinfo gethostbyname gethostname uname socket connect"
fail=0
obj=build/rel/proxy/config.o
bad=""
for s in $(nm -u "$obj" 2>/dev/null | awk '{print $2}'); do
	case " $funcs " in *" $s "*) bad="$bad $s" ;; esac
done
if [ ! -f "$obj" ]; then echo "not ok 1 - $obj is not built"; fail=1;
elif [ -z "$bad" ]; then echo "ok 1 - config.o, the grammar, calls no file-system, resolver or host-name function"; else
	echo "not ok 1 - config.o calls:$bad"; fail=1; fi
rdr=build/rel/proxy/config_file.o
u=$(nm -u "$rdr" 2>/dev/null | awk '{print $2}')
if echo "$u" | grep -qx fopen && echo "$u" | grep -qx getaddrinfo && echo "$u" | grep -qx gethostname; then
	echo "ok 2 - config_file.o, the reader, is where files are opened and names resolved"
else
	echo "not ok 2 - config_file.o opens no file or resolves nothing: is the check above looking at the right objects?"; fail=1
fi
r=build/asan/fuzz-replay/config
if ! command -v strace >/dev/null; then
	echo "ok 3 # SKIP strace is not installed (deps/debian-packages.txt lists it)"
	exit $fail
fi
inputs=()
while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find fuzz/corpus/config fuzz/regressions/config -type f ! -name '.*' -print0 2>/dev/null | sort -z)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# LeakSanitizer cannot run under ptrace; leaks are checked by the plain replay in tests/run
if ! ASAN_OPTIONS=detect_leaks=0 strace -f -qq -s 4096 -e trace=open,openat,stat,lstat,newfstatat,access,faccessat2,readlink,socket,connect -o "$log" "$r" "${inputs[@]}" >/dev/null 2>&1; then
	echo "not ok 3 - $r failed over its corpus"
	exit 1
fi
self=$(readlink -f "$r")
stray=$(grep -o '"[^"]*"' "$log" | tr -d '"' | sort -u | while IFS= read -r p; do
	case "$p" in
	"" | /proc/* | /lib/* | /lib64/* | /usr/lib/* | /etc/ld.so.* | /etc/libnl/* | /dev/* | /sys/*) continue ;;
	"$self") continue ;;
	esac
	printf '%s\n' "${inputs[@]}" | grep -qxF -- "$p" && continue
	echo "$p"
done)
sockets=$(grep -c -E '^[0-9]+ +(socket|connect)\(' "$log")
if [ -z "$stray" ] && [ "$sockets" -eq 0 ]; then echo "ok 3 - the config fuzz target opens only its ${#inputs[@]} inputs and no socket"; else
	echo "not ok 3 - the config fuzz target touched files beyond its inputs ($(echo $stray)) or made $sockets sockets"; fail=1; fi
exit $fail
