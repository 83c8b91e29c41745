# promptd — build, run, test.
#   make deps     install missing Debian packages (idempotent; apt-get as root or via sudo)
#   make run      deps + build + serve on 127.0.0.1:8080 with ./promptd.db
#   make test     deps + build + the whole suite (unit + integration)
#   make test SAN=1   the same under AddressSanitizer + UndefinedBehaviorSanitizer
SHELL   := /bin/bash
CC      ?= cc
PKGS    := libmicrohttpd libcurl jansson sqlite3 libsodium libjwt
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev \
            libsqlite3-dev libsodium-dev libjwt-dev libcriterion-dev curl
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

.PHONY: all deps run test unit integration clean valgrind format
all: $(BIN) promptd

promptd: $(BIN)
	@ln -sf $(BIN) promptd

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
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

test: deps
	@$(MAKE) --no-print-directory $(BIN) $(UNIT_BIN) $(INTEG_BIN) $(MOCK_BIN)
	@{ $(MAKE) --no-print-directory unit; u=$$?; $(MAKE) --no-print-directory integration; i=$$?; \
	   [ $$u -eq 0 ] && [ $$i -eq 0 ]; } 2>&1 | tee $(BUILD)/test.log; st=$${PIPESTATUS[0]}; \
	  tests/summarize.sh $(BUILD)/test.log; exit $$st

valgrind: $(BIN)
	@echo "see issue 6"

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
