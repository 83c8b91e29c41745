# promptd — build, run, test.
#   make deps     install missing Debian packages (idempotent; apt-get as root or via sudo)
#   make run      deps + build + serve on 127.0.0.1:8080 with ./promptd.db
#   make test     deps + build + the whole suite (unit + integration + the README examples + the Jarvis SDK test)
#   make test SAN=1   the same under AddressSanitizer + UndefinedBehaviorSanitizer
SHELL   := /bin/bash
CC      ?= cc
PKGS    := libmicrohttpd libcurl jansson sqlite3 libsodium libjwt
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev \
            libsqlite3-dev libsodium-dev libjwt-dev libcriterion-dev curl sqlite3 jq
# node and npm for the Jarvis SDK test (tests/sdk): Debian's packages when the commands
# are missing. Checked by command, not by package: a node from elsewhere (e.g. a
# nodejs package that bundles npm) already serves, and Debian's npm would conflict with it.
NODE_PKGS := nodejs npm
BUILD   ?= build
ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
WERROR  := $(if $(CI),-Werror,)
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -Isrc $(SANFLAGS) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS += $(SANFLAGS)

SRC      := $(filter-out $(SKIP),$(sort $(wildcard src/*.c src/*/*.c)))
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
LIB_OBJ  := $(filter-out $(BUILD)/src/main.o,$(OBJ))
MIGRATIONS := $(sort $(wildcard src/store/migrations/*/*.sql))
SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRC := $(sort $(wildcard tests/integration/*.c))
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
MOCK_SRC := $(sort $(wildcard tests/mock/*.c))
MOCK_BIN := $(if $(MOCK_SRC),$(BUILD)/tests/mock/mock_llm,)
BIN      := $(BUILD)/promptd

.PHONY: all deps run test unit integration readme sdk clean valgrind format
all: $(BIN) promptd

promptd: $(BIN)
	@ln -sf $(BIN) promptd

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$$missing $(NODE_PKGS)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: deps
	@$(MAKE) --no-print-directory all
	./$(BIN) serve --listen $${PROMPTD_LISTEN:-127.0.0.1:8080} --db $${PROMPTD_DB:-./promptd.db}

$(BIN): $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# migrations are embedded with .incbin; rebuild when any .sql changes
$(BUILD)/src/store/migrations.o: $(MIGRATIONS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB_OBJ) $(SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcriterion

$(BUILD)/tests/integration/%: tests/integration/%.c $(LIB_OBJ) $(SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcriterion

$(BUILD)/tests/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP -c -o $@ $<

$(BUILD)/tests/mock/mock_llm: $(MOCK_SRC) $(wildcard tests/mock/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $(filter %.c,$^) $(LDFLAGS) $(LDLIBS)

unit: $(UNIT_BIN) $(MOCK_BIN)
	@rc=0; for t in $(UNIT_BIN); do echo "== $$t"; PROMPTD_MOCK_BIN=$(abspath $(MOCK_BIN)) $$t --jobs 2 || rc=1; done; exit $$rc

integration: $(BIN) $(INTEG_BIN) $(MOCK_BIN)
	@rc=0; for t in $(INTEG_BIN); do echo "== $$t"; \
	  PROMPTD_BIN=$(abspath $(BIN)) PROMPTD_MOCK_BIN=$(abspath $(MOCK_BIN)) $$t --jobs 2 || rc=1; done; exit $$rc

# every example of README.md's API section, run as written against a fresh server (tests/readme.sh)
readme: $(BIN) $(MOCK_BIN)
	@echo "== tests/readme.sh"; PROMPTD_BIN=$(abspath $(BIN)) PROMPTD_MOCK_BIN=$(abspath $(MOCK_BIN)) tests/readme.sh README.md

# The official Jarvis SDK (@23blocks/block-jarvis, pinned in tests/sdk/package-lock.json)
# driven against a promptd the test starts itself (tests/sdk/README.md). Needs the npm
# registry for `npm ci` (node_modules stays out of git); node's runner prints
# "# pass N" / "# fail N" and exits non-zero on a failure.
sdk: $(BIN)
	cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error
	cd tests/sdk && PROMPTD_BIN=$(abspath $(BIN)) node --test --test-reporter=tap jarvis.test.js

test: deps
	@$(MAKE) --no-print-directory $(BIN) $(UNIT_BIN) $(INTEG_BIN) $(MOCK_BIN)
	@{ $(MAKE) --no-print-directory unit; u=$$?; $(MAKE) --no-print-directory integration; i=$$?; \
	   $(MAKE) --no-print-directory readme; r=$$?; $(MAKE) --no-print-directory sdk; j=$$?; \
	   [ $$u -eq 0 ] && [ $$i -eq 0 ] && [ $$r -eq 0 ] && [ $$j -eq 0 ]; } 2>&1 | tee $(BUILD)/test.log; st=$${PIPESTATUS[0]}; \
	  tests/summarize.sh $(BUILD)/test.log; $(SAN_CHECK) exit $$st

format:
	clang-format -i $(SRC) $(wildcard src/*.h src/*/*.h tests/*/*.c tests/*/*.h)

clean:
	rm -rf build build-san promptd

-include $(OBJ:.o=.d) $(SUPPORT_OBJ:.o=.d)

# ---- bench-history (issue 4, item 9): the spec 002 history query at 1,000,000 executions.
# Not part of `make test`. BENCH_ARGS passes options, e.g. BENCH_ARGS="--executions 100000".
BENCH_HISTORY := $(BUILD)/bench/bench_history
$(BENCH_HISTORY): bench/bench_history.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

.PHONY: bench-history
bench-history: $(BENCH_HISTORY)
	$(BENCH_HISTORY) $(BENCH_ARGS)

# ---- bench-keys: does an API key check take longer for a known prefix than an
# unknown one? Not part of `make test`. BENCH_ARGS passes options (bench/bench_keys.c).
BENCH_KEYS := $(BUILD)/bench/bench_keys
$(BENCH_KEYS): bench/bench_keys.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

.PHONY: bench-keys
bench-keys: $(BENCH_KEYS)
	$(BENCH_KEYS) $(BENCH_ARGS)

# ---- bench (issue 3, item 8): the engine benchmark, bench/run.sh (bench/README.md).
# Not part of `make test`; builds what it needs itself; ~3 minutes.
.PHONY: bench
bench: ; bench/run.sh

# ---- sanitizers (issue 6, proof): what `make test SAN=1` adds. Every process
# of the run (Criterion workers, promptd servers and CLI runs, the mock) writes
# an ASan/LSan report to build-san/sanitizer/asan.<pid> and exits 86 after it;
# UBSan stops at the first report, also with 86. The harness fails a test
# whose promptd exits 86 (tests/support/harness.c), and `make test SAN=1`
# fails when any report was written (SAN_CHECK, run by the test rule).
# Leaks entirely inside third-party libraries would go to tests/lsan.supp
# (none so far); the Criterion runner's own is ignored by the harness.
# (harness.o and mock_proc.o are kept: as intermediates make deleted them after
# the build, and `make unit` / `make integration` then relinked every binary.)
.SECONDARY: $(SUPPORT_OBJ)
ifeq ($(SAN),1)
SAN_LOG_DIR := $(abspath $(BUILD))/sanitizer
ifeq ($(MAKELEVEL),0)
override ASAN_OPTIONS := detect_leaks=1:exitcode=86:log_path=$(SAN_LOG_DIR)/asan$(if $(ASAN_OPTIONS),:$(ASAN_OPTIONS))
override LSAN_OPTIONS := exitcode=86:suppressions=$(abspath tests/lsan.supp):print_suppressions=0$(if $(LSAN_OPTIONS),:$(LSAN_OPTIONS))
override UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1:exitcode=86$(if $(UBSAN_OPTIONS),:$(UBSAN_OPTIONS))
$(shell rm -rf $(SAN_LOG_DIR) && mkdir -p $(SAN_LOG_DIR))
endif
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
SAN_CHECK = n=$$(ls $(SAN_LOG_DIR) 2>/dev/null | wc -l); \
  if [ "$$n" -gt 0 ]; then for f in $(SAN_LOG_DIR)/*; do echo "---- $$f"; cat "$$f"; done; \
    echo "sanitizers: $$n report(s) in $(SAN_LOG_DIR): FAILED"; st=1; \
  else echo "sanitizers: no reports"; fi;
endif

# ---- valgrind (issue 6, proof): `make valgrind` runs the unit test binaries
# (all but the mock provider's own) under memcheck, each Criterion worker
# traced (not the mock provider, nor system tools a test runs such as
# openssl), and the integration binaries named in VALGRIND_TESTS natively,
# with every promptd they start (server and CLI) under memcheck: the harness
# wraps it in $PD_VALGRIND and scales its timeouts. Each checked process logs
# to build/valgrind/vg.<pid>.log; the run fails unless every test passes and
# the logs add up to 0 errors and 0 bytes definitely lost. Suppressions:
# tests/valgrind.supp. About 10 minutes on 2 cores once built; not part of CI.
VALGRIND       ?= valgrind
VALGRIND_TESTS ?= test_http test_bad_input test_auth test_tokens test_prompts test_v1_prompt test_cli test_executions \
                  test_gateway
# throughput tests whose timing assertions cannot hold under valgrind (Criterion filter patterns, |-joined)
VALGRIND_SKIP  ?= engine_mock/two_thousand_in_flight
VG_DIR   := $(abspath build)/valgrind
VG_OPTS  := --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --error-exitcode=99 \
            --num-callers=40 --suppressions=$(abspath tests/valgrind.supp) --log-file=$(VG_DIR)/vg.%p.log
VG_INTEG := $(filter $(VALGRIND_TESTS:%=$(BUILD)/tests/integration/%),$(INTEG_BIN))
# every unit test but the mock provider's own (test code, not promptd's)
VG_UNIT  := $(filter-out $(BUILD)/tests/unit/test_mock_llm,$(UNIT_BIN))

valgrind: deps
	@if [ "$(BUILD)" != build ]; then echo "make valgrind checks the plain build: run it without SAN=1"; exit 2; fi
	@command -v $(VALGRIND) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; echo "installing: valgrind"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	@$(MAKE) --no-print-directory $(BIN) $(VG_UNIT) $(VG_INTEG) $(MOCK_BIN)
	@rm -rf $(VG_DIR); mkdir -p $(VG_DIR); rc=0; vg=$$(command -v $(VALGRIND)); \
	for t in $(VG_UNIT); do echo "== valgrind $$t"; s=$$SECONDS; \
	  PROMPTD_MOCK_BIN=$(abspath $(MOCK_BIN)) $$vg $(VG_OPTS) --trace-children=yes \
	    --trace-children-skip='*/mock_llm,/usr/*,/bin/*' $$t --jobs 2 --filter '!($(VALGRIND_SKIP))' || rc=1; \
	  echo "   ($$((SECONDS - s)) s)"; done; \
	for t in $(VG_INTEG); do echo "== $$t, promptd under valgrind"; s=$$SECONDS; \
	  PD_VALGRIND="$$vg $(VG_OPTS)" PROMPTD_BIN=$(abspath $(BIN)) PROMPTD_MOCK_BIN=$(abspath $(MOCK_BIN)) \
	    $$t --jobs 2 --filter '!($(VALGRIND_SKIP))' || rc=1; echo "   ($$((SECONDS - s)) s)"; done; \
	logs=$$(ls $(VG_DIR)/vg.*.log 2>/dev/null | wc -l); \
	done_logs=$$(grep -l "ERROR SUMMARY:" $(VG_DIR)/vg.*.log 2>/dev/null | wc -l); \
	errors=$$(grep -h "ERROR SUMMARY:" $(VG_DIR)/vg.*.log 2>/dev/null | awk '{s += $$4} END {print s + 0}'); \
	lost=$$(grep -h "definitely lost:" $(VG_DIR)/vg.*.log 2>/dev/null | tr -d , | awk '{s += $$4} END {print s + 0}'); \
	for f in $$(grep -L "ERROR SUMMARY: 0 errors" $(VG_DIR)/vg.*.log 2>/dev/null); do \
	  grep -q "ERROR SUMMARY:" $$f && { echo "---- $$f"; cat $$f; }; done; \
	echo "valgrind: $$done_logs processes checked (+ $$((logs - done_logs)) logs without a summary: forked" \
	  "children that ran an untraced program, or processes killed)," \
	  "ERROR SUMMARY: $$errors errors, definitely lost: $$lost bytes"; \
	if [ $$rc -ne 0 ]; then echo "valgrind: some test failed"; fi; \
	[ $$rc -eq 0 ] && [ $$errors -eq 0 ] && [ $$lost -eq 0 ]

# ---- fuzz (issue 6, proof): libFuzzer targets in tests/fuzz/, built with clang
# into build-fuzz/ (every promptd object but main.o and server.o, whose request
# accessors tests/fuzz/fuzz_http.c stands in for). `make fuzz` runs each target
# for FUZZ_SECONDS (default 60) from its seed corpus tests/fuzz/corpus/<name>/;
# new inputs go to build-fuzz/corpus/<name>/, crashes to
# build-fuzz/artifacts/<name>/ (and make fails); the targets' scratch store
# lives in build-fuzz/tmp/ (libFuzzer leaves with _exit, so it stays). FUZZ_TARGETS picks targets,
# FUZZ_ARGS adds libFuzzer options. Reproduce a crash:
#   build-fuzz/fuzz_<name> build-fuzz/artifacts/<name>/crash-...
# `make deps-fuzz` installs clang and libFuzzer's runtime.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= router json_body template request provider
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c17 -D_GNU_SOURCE -Wall -Wextra -Isrc -Itests $(FUZZ_SAN) \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJ     := $(filter-out src/main.c src/http/server.c,$(SRC))
FUZZ_OBJ     := $(FUZZ_OBJ:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/tests/fuzz/fuzz_http.o
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_DEB_PKGS := clang libclang-rt-14-dev

.PHONY: fuzz fuzz-build deps-fuzz clean-fuzz
clean: clean-fuzz
clean-fuzz: ; rm -rf $(FUZZ_BUILD)
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o)
deps-fuzz: deps
	@missing=""; for p in $(FUZZ_DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/src/store/migrations.o: $(MIGRATIONS)

$(FUZZ_BUILD)/tests/fuzz/%.o: tests/fuzz/%.c tests/fuzz/fuzz_http.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	@rc=0; for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ_BUILD)/tmp; mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t $(FUZZ_BUILD)/tmp; \
	  dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  TMPDIR=$(abspath $(FUZZ_BUILD))/tmp ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 \
	    -max_len=16384 -print_final_stats=1 $$dict -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ \
	    $(FUZZ_ARGS) $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t > $(FUZZ_BUILD)/fuzz_$$t.log 2>&1; \
	  st=$$?; \
	  grep -aE '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb' $(FUZZ_BUILD)/fuzz_$$t.log; \
	  if [ $$st -ne 0 ]; then rc=1; echo "fuzz_$$t FAILED (exit $$st): see $(FUZZ_BUILD)/fuzz_$$t.log"; \
	    grep -aE -m 20 'ERROR|SUMMARY|runtime error|fuzz check failed|Test unit written' $(FUZZ_BUILD)/fuzz_$$t.log; fi; \
	done; exit $$rc

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:$(FUZZ_BUILD)/fuzz_%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.d)
