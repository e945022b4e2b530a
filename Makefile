# bmsgate: one Makefile. `make test` installs what is missing, builds, runs every test.
# Quiet unless V=1. Builds land in build/: rel (optimised binary), asan (unit tests), fuzz.

V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

CC      ?= cc
CLANG   ?= clang
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
FUZZ_SECONDS ?= 10

# Every folder that holds code of the binary (docs/architecture.md lists them); cmd/main.c is
# linked on its own, so that test programs can link the library with their own main.
MODULES := base parsers policies engine audit capture pki load proxy sim cmd
LIB_SRC := $(filter-out cmd/main.c,$(sort $(foreach m,$(MODULES),$(wildcard $(m)/*.c))))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(FUZZ_SRC))
# Helper programs for integration tests and benchmarks: tests/tools/NAME.c and bench/NAME.c -> build/tools/NAME.
TOOL_SRC := $(sort $(wildcard tests/tools/*.c bench/*.c))
TOOL_BIN := $(patsubst %.c,build/tools/%,$(notdir $(TOOL_SRC)))

PKGS    := libuv openssl libpcap libnl-3.0 libnl-route-3.0 libmodbus jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CSTD    := -std=c11 -D_GNU_SOURCE
BASE_CFLAGS := $(CSTD) $(WARN) -I. $(PKG_CFLAGS) -DBMS_VERSION='"$(VERSION)"' -MMD -MP
# Link-time optimisation: the per-packet path crosses modules (capture -> parsers), and calls
# between them were a measurable share of `decode` (docs/decode.md).
REL_CFLAGS  := $(BASE_CFLAGS) -O2 -flto=auto -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g $(SAN) -DBMS_TESTING=1

REL_OBJ  := $(patsubst %.c,build/rel/%.o,$(LIB_SRC))
ASAN_OBJ := $(patsubst %.c,build/asan/%.o,$(LIB_SRC))
UNIT_BIN := $(patsubst tests/unit/%.c,build/asan/tests/%,$(UNIT_SRC))
REPLAY_BIN := $(patsubst %,build/asan/fuzz-replay/%,$(FUZZ_NAMES))
FUZZ_BIN := $(patsubst %,build/fuzz/%,$(FUZZ_NAMES))

.SECONDARY:
.PHONY: all deps tools test unit bench fuzz fuzz-build demo clean asan
all: build/bmsgate

deps:
	$(Q)scripts/ensure-deps

build/bmsgate: build/rel/cmd/main.o build/rel/libbmsgate.a
	@echo "  LD      $@"
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/asan/bmsgate: build/asan/cmd/main.o build/asan/libbmsgate.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/rel/libbmsgate.a: $(REL_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

build/asan/libbmsgate.a: $(ASAN_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

build/rel/%.o: %.c
	@echo "  CC      $<"
	$(Q)mkdir -p $(dir $@) && $(CC) $(REL_CFLAGS) -c -o $@ $<

build/asan/%.o: %.c
	@echo "  CC/SAN  $<"
	$(Q)mkdir -p $(dir $@) && $(CC) $(ASAN_CFLAGS) -c -o $@ $<

# Unit tests: one cmocka binary per tests/unit/test_*.c, under ASan and UBSan.
build/asan/tests/%: build/asan/tests/unit/%.o build/asan/libbmsgate.a
	@echo "  LD/SAN  $@"
	$(Q)mkdir -p $(dir $@) && $(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

# Fuzz regression replay: the same fuzz target, driven by a plain main over files, under ASan.
build/asan/fuzz-replay/%: build/asan/fuzz/fuzz_%.o build/asan/tests/fuzz_replay_main.o build/asan/libbmsgate.a
	@echo "  LD/SAN  $@"
	$(Q)mkdir -p $(dir $@) && $(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKG_LIBS)

asan: build/asan/bmsgate $(UNIT_BIN) $(REPLAY_BIN)

tools: $(TOOL_BIN)
build/tools/%: tests/tools/%.c build/rel/libbmsgate.a
	@echo "  LD      $@"
	$(Q)mkdir -p $(dir $@) && $(CC) $(REL_CFLAGS) -o $@ $^ $(PKG_LIBS)
build/tools/%: bench/%.c build/rel/libbmsgate.a
	@echo "  LD      $@"
	$(Q)mkdir -p $(dir $@) && $(CC) $(REL_CFLAGS) -o $@ $^ $(PKG_LIBS)

# `make test`: set-up, build, then every test. The last line reads `N passed, N failed`.
test: deps
	$(Q)$(MAKE) --no-print-directory build/bmsgate asan tools
	$(Q)tests/run

unit: asan
	$(Q)tests/run --unit-only

# libFuzzer targets: clang, one per parser and for the capture path.
FUZZ_CFLAGS := $(CSTD) -I. $(PKG_CFLAGS) -DBMS_VERSION='"$(VERSION)"' -O1 -g -fsanitize=fuzzer-no-link,address,undefined -DBMS_FUZZING=1
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC))
build/fuzz/obj/%.o: %.c
	@echo "  CC/FUZZ $<"
	$(Q)mkdir -p $(dir $@) && $(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
build/fuzz/libbmsgate.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
build/fuzz/%: fuzz/fuzz_%.c build/fuzz/libbmsgate.a
	@echo "  FUZZ    $@"
	$(Q)mkdir -p $(dir $@) && $(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)
fuzz-build: $(FUZZ_BIN)
fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)scripts/run-fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

# Recursive make after deps: pkg-config flags are read once the packages exist.
bench: deps
	$(Q)$(MAKE) --no-print-directory build/bmsgate tools
	$(Q)bench/run

demo: deps
	$(Q)$(MAKE) --no-print-directory build/bmsgate tools
	$(Q)scripts/demo

clean:
	rm -rf build

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) build/rel/cmd/main.d build/asan/cmd/main.d
-include $(patsubst tests/unit/%.c,build/asan/tests/unit/%.d,$(UNIT_SRC))
-include $(patsubst fuzz/%.c,build/asan/fuzz/%.d,$(FUZZ_SRC)) build/asan/tests/fuzz_replay_main.d
