# Makefile - builds the libraries, services and tests, and runs the tests.
#
# On the host (needs only Docker with Compose v2):
#   make test        build the trixie dev image, run unit + component tests in
#                    it, then bring the compose deployment up and run the
#                    system tests against it; ends with "N passed, M failed"
# Inside the dev image (what `make test` calls):
#   make all         libraries and the seven service binaries into build/bin
#   make check       unit tests, the promtool check of the metrics format, and
#                    component tests (starts nats-server, PostgreSQL)
#   make lint        cppcheck and the banned-function grep (over the
#                    generated files too) and the clang-format check
#   make fuzz        every libFuzzer target (tests/fuzz) for FUZZ_SECONDS
#                    (default 600) each; `make check` replays their
#                    regression inputs and fuzzes each FUZZ_CHECK_SECONDS
#   make tsan        the threaded tests under ThreadSanitizer, in a build of
#                    their own (build/tsan); `make check` runs it too
#   make docs        the event catalog docs/catalog/ from contracts/ and
#                    their git history (tools/catalog.py; needs git and a
#                    full clone, or SHOP_CONTRACT_HISTORY); `make check`
#                    fails when the committed catalog differs from it
#   make hardening   a normal (unsanitized) build of the binaries into
#                    build/release, checked by tools/check-hardening.sh;
#                    `make check` runs it too
# On the host, against a running `docker compose up` (loadtest/README.md):
#   make loadtest [RATE=1000] [DURATION=60] [MODE=run|saturate] [CEILINGS=1|0]
#                 [DURABILITY=durable|relaxed|strict|compare]
#   make follow ORDER=<id>   print one order's events as they happen (js/follow.mjs)
#   make chaos [CHAOS_DURATION=60] [CHAOS_RATE=10] [CHAOS_INTERVAL=5] [CHAOS_SEED=n]
#                 a bounded load while a random container is SIGKILLed every
#                 few seconds, a line a second, then shopctl audit (tools/chaos.sh)
# Switches: V=1 shows full commands, SANITIZE=address,undefined, WERROR=1.

BUILD ?= build
# make loadtest: offered orders per second, seconds, run or saturate.
RATE ?= 1000
DURATION ?= 60
MODE ?= run
CEILINGS ?= 1
DURABILITY ?=
GEN := $(BUILD)/gen
PKGS := libnats libmicrohttpd libcjson sqlite3 libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif
# Hardening, in every build (the runtime image's binaries are built with
# these defaults by infra/docker/Dockerfile): stack canaries, stack clash
# probes, full RELRO (GOT read-only after relocation, all symbols bound at
# start), and on x86 the CET marks (IBT/SHSTK) that a CET kernel enforces.
# FORTIFY only when unsanitized and optimized: it needs -O1 or more, and
# its __*_chk wrappers hide calls from ASan's interceptors, so a sanitized
# build would check less, not more. tools/check-hardening.sh checks the
# result on the binaries.
HARDEN_CFLAGS := -fstack-protector-strong -fstack-clash-protection
ifneq ($(filter x86_64% i386% i486% i586% i686%,$(shell $(CC) -dumpmachine 2>/dev/null)),)
HARDEN_CFLAGS += -fcf-protection
endif
ifeq ($(SANITIZE),)
ifneq ($(filter -O1 -O2 -O3 -Os -Oz -Og -Ofast,$(CFLAGS)),)
HARDEN_CPPFLAGS := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3
endif
endif
LDFLAGS += -Wl,-z,relro,-z,now
CPPFLAGS += -D_GNU_SOURCE $(HARDEN_CPPFLAGS) -Ilibs -I$(GEN) $(PKG_CFLAGS)
ALL_CFLAGS = -std=c11 $(WARN) $(HARDEN_CFLAGS) $(CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Libraries, lowest layer last so one link line serves every program.
LIB_ORDER := svc web bus evt db metrics core
LIB_NAMES := $(foreach l,$(LIB_ORDER),$(if $(wildcard libs/$(l)/*.c),$(l)))
lib_srcs = $(wildcard libs/$(1)/*.c)
lib_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call lib_srcs,$(1)))
LIBS := $(foreach l,$(LIB_NAMES),$(BUILD)/lib/lib$(l).a)

# Generated from contracts/: C types and codecs for every message.
CONTRACT_FILES := $(shell find contracts -type f -name '*.json' 2>/dev/null)
GEN_CONTRACTS := $(if $(wildcard tools/contractgen.py),$(GEN)/contracts_gen.c $(GEN)/contracts_gen.h)
EVT_GEN_OBJ := $(if $(GEN_CONTRACTS),$(BUILD)/obj/gen/contracts_gen.o)

SERVICES := $(notdir $(wildcard services/*))
SERVICE_LIBS := $(foreach s,$(SERVICES),$(BUILD)/lib/libservice_$(s).a)
BINS := $(addprefix $(BUILD)/bin/shop-,$(SERVICES)) $(if $(wildcard tools/shopctl),$(BUILD)/bin/shopctl)

SHOPCTL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out tools/shopctl/main.c,$(wildcard tools/shopctl/*.c)))
SHOPCTL_LIB := $(if $(SHOPCTL_OBJS),$(BUILD)/lib/libshopctl.a)

# The load generator: its modules archived (the unit tests link them), its
# main apart, and libcurl for it alone (no service links libcurl).
LT_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out loadtest/main.c,$(wildcard loadtest/*.c)))
LT_LIB := $(if $(LT_OBJS),$(BUILD)/lib/libloadtest.a)
LT_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null)
BINS += $(if $(LT_LIB),$(BUILD)/bin/shop-loadtest)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
COMPONENT_TESTS := $(patsubst tests/component/%.c,$(BUILD)/tests/%,$(wildcard tests/component/test_*.c))

.PHONY: all check unit component lint hardening test clean loadtest docs follow fuzz fuzz-build \
	fuzz-check tsan chaos
.SECONDARY:

all: $(BINS)

# Grouped target (&:): one generator run makes both files, even under -j.
$(GEN_CONTRACTS) &: tools/contractgen.py $(CONTRACT_FILES)
	@mkdir -p $(GEN)
	@echo "  GEN     contracts"
	$(Q)python3 tools/contractgen.py contracts $(GEN)

$(BUILD)/obj/%.o: %.c $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(EVT_GEN_OBJ): $(GEN)/contracts_gen.c $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/lib/libevt.a: $(call lib_objs,evt) $(EVT_GEN_OBJ)
$(BUILD)/lib/lib%.a:
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

define lib_rule
$(BUILD)/lib/lib$(1).a: $(call lib_objs,$(1))
endef
$(foreach l,$(filter-out evt,$(LIB_NAMES)),$(eval $(call lib_rule,$(l))))

# Each service: its C files plus its migrations embedded as C strings.
define service_rule
$(GEN)/migrations_$(1).c: tools/embed_sql.py $(wildcard services/$(1)/migrations/*.sql)
	@mkdir -p $(GEN)
	@echo "  GEN     migrations $(1)"
	$(Q)python3 tools/embed_sql.py $(1) services/$(1)/migrations $$@
$(BUILD)/lib/libservice_$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c))) $(BUILD)/obj/gen/migrations_$(1).o
$(BUILD)/bin/shop-$(1): $(BUILD)/obj/services/$(1)/main.o $(BUILD)/lib/libservice_$(1).a $(LIBS)
	@mkdir -p $$(dir $$@)
	@echo "  LD      $$@"
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

# The console's page, embedded in its binary as a C string.
$(GEN)/console_page.c: tools/embed_file.py tools/embed_sql.py services/console/page/index.html
	@mkdir -p $(GEN)
	@echo "  GEN     console page"
	$(Q)python3 tools/embed_file.py console_page_html services/console/page/index.html $@
$(BUILD)/lib/libservice_console.a: $(BUILD)/obj/gen/console_page.o

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# shopctl: its modules archived (the audit's tests link them), its main apart.
$(SHOPCTL_LIB): $(SHOPCTL_OBJS)
$(BUILD)/bin/shopctl: $(BUILD)/obj/tools/shopctl/main.o $(SHOPCTL_LIB) $(LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LT_LIB): $(LT_OBJS)
$(BUILD)/obj/loadtest/%.o: CPPFLAGS += $(shell pkg-config --cflags libcurl 2>/dev/null)
$(BUILD)/bin/shop-loadtest: $(BUILD)/obj/loadtest/main.o $(LT_LIB) $(LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LT_LIBS) $(LDLIBS)

# Tests: one binary per file, linked with every service's non-main objects
# (archived, so a test pulls in only the modules it calls) and the libraries.
$(BUILD)/tests/%: tests/unit/%.c $(SERVICE_LIBS) $(SHOPCTL_LIB) $(LIBS) $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $<"
	$(Q)$(CC) $(CPPFLAGS) -Itools $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(SERVICE_LIBS) $(SHOPCTL_LIB) $(LIBS) $(LDLIBS) -lcmocka
# The load generator's tests link its modules instead of the services'.
$(BUILD)/tests/test_loadtest_%: tests/unit/test_loadtest_%.c $(LT_LIB) $(LIBS) $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $<"
	$(Q)$(CC) $(CPPFLAGS) -Iloadtest $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LT_LIB) $(LIBS) $(LT_LIBS) $(LDLIBS) -lcmocka
$(BUILD)/tests/%: tests/component/%.c $(SERVICE_LIBS) $(SHOPCTL_LIB) $(LIBS) $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $<"
	$(Q)$(CC) $(CPPFLAGS) -Itools $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(SERVICE_LIBS) $(SHOPCTL_LIB) $(LIBS) $(LDLIBS) -lcmocka

# The metrics format check: a program that renders every kind of metric,
# whose output tests/metrics/check_promtool.sh feeds to promtool.
METRICS_SAMPLE := $(BUILD)/tests/metrics_sample
$(METRICS_SAMPLE): tests/metrics/metrics_sample.c $(LIBS) $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

unit: $(UNIT_TESTS)
	$(Q)tests/run-binaries.sh $(UNIT_TESTS)

component: $(COMPONENT_TESTS) all
	$(Q)tests/component/run.sh $(COMPONENT_TESTS)

check: all $(UNIT_TESTS) $(COMPONENT_TESTS) $(METRICS_SAMPLE)
	$(Q)tests/run-binaries.sh $(UNIT_TESTS)
	$(Q)tests/metrics/check_promtool.sh $(METRICS_SAMPLE)
	$(Q)tests/infra/nats_start.sh
	$(Q)if [ -f tests/contracts/check_examples.py ]; then python3 tests/contracts/check_examples.py contracts; fi
	$(Q)python3 tools/catalog.py check docs/catalog
	$(Q)BUILD=$(BUILD) tools/lint.sh
	$(Q)if [ -n "$(COMPONENT_TESTS)" ]; then tests/component/run.sh $(COMPONENT_TESTS); fi
	$(Q)$(MAKE) --no-print-directory hardening
	$(Q)$(MAKE) --no-print-directory fuzz-check
	$(Q)$(MAKE) --no-print-directory tsan

lint: $(GEN_CONTRACTS) $(addprefix $(GEN)/migrations_,$(addsuffix .c,$(SERVICES))) $(GEN)/console_page.c
	$(Q)BUILD=$(BUILD) tools/lint.sh

# Fuzzing (tests/fuzz/README.md): clang builds the libraries and the gateway
# with libFuzzer's coverage hooks, ASan and UBSan (any report aborts), in a
# tree of its own; each target links them with libFuzzer's main.
# tools/fuzz-inputs.py writes the seeds and dictionaries from contracts/
# and the system tests; tools/fuzz.sh runs the targets two at a time.
FUZZ_BUILD := build/fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
FUZZ_CHECK_SECONDS ?= 20
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/bin/fuzz_,$(FUZZ_TARGETS))

$(BUILD)/bin/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/lib/libservice_gateway.a $(LIBS) $(GEN_CONTRACTS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ-LD $@"
	$(Q)$(CC) $(CPPFLAGS) -Iservices/gateway $(ALL_CFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(BUILD)/lib/libservice_gateway.a $(LIBS) $(LDLIBS)
$(BUILD)/inputs/.stamp: tools/fuzz-inputs.py $(CONTRACT_FILES) tests/system/cases.sh
	@echo "  GEN     fuzz seeds and dictionaries"
	$(Q)rm -rf $(BUILD)/inputs && python3 tools/fuzz-inputs.py contracts $(BUILD)/inputs && touch $@

# CFLAGS through the environment: on the command line it would replace the
# sanitizer flags the Makefile appends.
fuzz-build:
	$(Q)CFLAGS="-O1 -g -fno-sanitize-recover=all" $(MAKE) -s --no-print-directory BUILD=$(FUZZ_BUILD) \
		CC=$(FUZZ_CC) SANITIZE=fuzzer-no-link,address,undefined $(FUZZ_BINS) $(FUZZ_BUILD)/inputs/.stamp

fuzz: fuzz-build
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-check: fuzz-build
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) tools/fuzz.sh $(FUZZ_CHECK_SECONDS) $(FUZZ_TARGETS)

# ThreadSanitizer: the tests that run threads (the runtime's consumer,
# relay, pool and tasks against the real servers; the group commit and pool
# threads; the HTTP server; the metrics registry) in a build of their own.
# Any report fails its test (halt_on_error); tests/tsan.supp holds the
# suppressions, only for third-party code, each with its reason.
TSAN_BUILD := build/tsan
TSAN_TESTS := $(addprefix $(TSAN_BUILD)/tests/,test_runtime test_bus test_bus_log test_svc test_web test_metrics test_gateway)
tsan:
	$(Q)CFLAGS="-O1 -g" $(MAKE) -s --no-print-directory BUILD=$(TSAN_BUILD) SANITIZE=thread $(TSAN_TESTS)
	$(Q)TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		tests/component/run.sh $(TSAN_TESTS)

# The binaries as shipped: a sanitized build (what `make check` tests) has
# no FORTIFY, so the check needs its own normal build. Only the service
# binaries, not the tests, to keep it short; under build/ so `clean` and
# .gitignore cover it.
RELEASE_BUILD := build/release
hardening:
	$(Q)$(MAKE) --no-print-directory BUILD=$(RELEASE_BUILD) SANITIZE= \
		$(addprefix $(RELEASE_BUILD)/bin/shop-,$(SERVICES))
	$(Q)CC="$(CC)" tools/check-hardening.sh $(addprefix $(RELEASE_BUILD)/bin/shop-,$(SERVICES)) \
		$(RELEASE_BUILD)/lib/*.a

# The event catalog, generated. Each message's version history comes from
# git, which shop-dev lacks: on the host (no SHOP_CONTRACT_HISTORY),
# tools/contract-history.sh reads it from the clone (a full one) and
# tools/catalog.py runs in shop-dev:$SHOP_TAG (built like make test does);
# where SHOP_CONTRACT_HISTORY names a directory it wrote (in shop-dev),
# catalog.py runs directly.
docs:
	$(Q)if [ -n "$$SHOP_CONTRACT_HISTORY" ]; then python3 tools/catalog.py generate docs/catalog; \
	else h=$$(mktemp -d) && trap 'rm -rf "$$h"' EXIT && tools/contract-history.sh "$$h" && \
		docker build -q -t "shop-dev:$${SHOP_TAG:-latest}" --target dev -f infra/docker/Dockerfile . >/dev/null && \
		docker run --rm --user "$$(id -u):$$(id -g)" -v "$$PWD:/src" -w /src -v "$$h:/history:ro" \
			-e SHOP_CONTRACT_HISTORY=/history -e PYTHONDONTWRITEBYTECODE=1 "shop-dev:$${SHOP_TAG:-latest}" \
			python3 tools/catalog.py generate docs/catalog; fi

# Host side: everything runs in containers.
test:
	$(Q)tests/run-all.sh

# Host side: drive the running compose deployment (loadtest/run.sh).
loadtest:
	$(Q)RATE=$(RATE) DURATION=$(DURATION) MODE=$(MODE) CEILINGS=$(CEILINGS) \
		DURABILITY=$(DURABILITY) loadtest/run.sh

# Host side, against a running `docker compose up`: kill containers under load
# and watch the shop recover (tools/chaos.sh; the CHAOS_* settings pass through
# the environment).
chaos:
	$(Q)tools/chaos.sh

# Host side, against a running `docker compose up`: one order's journey, live,
# from the JavaScript follower in the node image (infra/docker/Dockerfile).
ORDER ?=
follow:
	$(Q)test -n "$(ORDER)" || { echo "usage: make follow ORDER=<order id>"; exit 2; }
	$(Q)docker compose run --rm follow $(ORDER)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
