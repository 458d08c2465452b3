# pg-appliance: one entry point.
#   make            static musl binaries in build/bin/
#   make test       every test (unit under ASan+UBSan, integration, simulator, short fuzz)
#   make up / down  the local cluster
#   make fuzz       longer fuzz runs;  make lint  format + static analysis;  make bench
#
# Layout convention, so a new program is one line: component directory X holds X/main.c
# (the program's entry) and any other X/*.c, which are archived into build/X/libX.a (and a
# sanitizer twin used by unit tests). A program links its main with the archives it names.
.DEFAULT_GOAL := all
SHELL := /bin/bash

BUILD ?= build
SAN := $(BUILD)/san
FUZZ := $(BUILD)/fuzz

# The private static musl prefix; deps.mk is regenerated (and the prefix built) on demand.
$(BUILD)/deps.mk: mk/deps.sh mk/packages.sh
	@mkdir -p $(BUILD)
	@p=$$(mk/deps.sh) && echo "DEPS_PREFIX := $$p" > $@
ifeq ($(filter clean distclean lint fmt,$(MAKECMDGOALS)),)
include $(BUILD)/deps.mk
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wno-unused-parameter
COMMON := -std=c11 -D_GNU_SOURCE -Ilib -I. $(WARN) -g
# Release: musl, static, hardened.
CC_REL := musl-gcc
CFLAGS_REL := $(COMMON) -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
              -isystem $(DEPS_PREFIX)/include
LDFLAGS_REL := -static -L$(DEPS_PREFIX)/lib
# Sanitizer build (glibc, Debian's -dev packages) for unit tests and the simulator.
CC_SAN ?= gcc
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS_SAN := $(COMMON) -O1 $(SANFLAGS) -DAPPLIANCE_TEST_BUILD
LDFLAGS_SAN := $(SANFLAGS)
# Fuzz build: clang, libFuzzer instrumentation on every component object.
CFLAGS_FUZZ := $(COMMON) -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-omit-frame-pointer -DAPPLIANCE_TEST_BUILD -DAPPLIANCE_FUZZ_BUILD
# System libraries each dependency name maps to, per build.
LIBS_REL_seccomp := -lseccomp
LIBS_REL_curl := -lcurl
LIBS_REL_jansson := -ljansson
LIBS_REL_yaml := -lyaml
LIBS_REL_pq := -lpq -lpgcommon_shlib -lpgport_shlib
LIBS_REL_nghttp2 := -lnghttp2
LIBS_SAN_seccomp := -lseccomp
LIBS_SAN_curl := -lcurl
LIBS_SAN_jansson := -ljansson
LIBS_SAN_yaml := -lyaml
LIBS_SAN_pq := -lpq
LIBS_SAN_nghttp2 := -lnghttp2

COMPONENTS := lib init supervisor dcs agent router ctl
comp_srcs = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))

# Archive rules for every component, release and sanitizer.
define component
$(BUILD)/obj/$(1)/%.o: $(1)/%.c | $(BUILD)/deps.mk
	@mkdir -p $$(@D)
	$$(CC_REL) $$(CFLAGS_REL) -MMD -MP -c $$< -o $$@
$(SAN)/obj/$(1)/%.o: $(1)/%.c
	@mkdir -p $$(@D)
	$$(CC_SAN) $$(CFLAGS_SAN) -MMD -MP -c $$< -o $$@
$(BUILD)/lib/lib$(1).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(call comp_srcs,$(1)))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rc $$@)
$(SAN)/lib/lib$(1).a: $(patsubst %.c,$(SAN)/obj/%.o,$(call comp_srcs,$(1)))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rc $$@)
$(FUZZ)/obj/$(1)/%.o: $(1)/%.c
	@mkdir -p $$(@D)
	clang $$(CFLAGS_FUZZ) -MMD -MP -c $$< -o $$@
$(FUZZ)/lib/lib$(1).a: $(patsubst %.c,$(FUZZ)/obj/%.o,$(call comp_srcs,$(1)))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rc $$@)
endef
$(foreach c,$(COMPONENTS),$(eval $(call component,$(c))))

# program NAME, DIR (holds main.c), COMPONENT ARCHIVES (first wins), DEPENDENCIES
define program
PROGRAMS += $(BUILD)/bin/$(1)
$(BUILD)/bin/$(1): $(BUILD)/obj/$(2)/main.o $(foreach c,$(3),$(BUILD)/lib/lib$(c).a)
	@mkdir -p $$(@D)
	$$(CC_REL) $$(LDFLAGS_REL) -o $$@ $$^ $(foreach d,$(4),$$(LIBS_REL_$(d)))
endef

# ---- programs: one line each ----
$(eval $(call program,appliance-init,init,init supervisor lib,seccomp))
$(eval $(call program,appliance-agent,agent,agent lib,pq curl jansson yaml))
$(eval $(call program,appliancectl,ctl,ctl agent lib,pq curl jansson yaml))
$(eval $(call program,appliance-router,router,router lib,curl jansson yaml))
$(eval $(call program,appliance-dcs,dcs,dcs lib,jansson nghttp2))

# Per-directory extras (extra test binaries, simulator, soak targets): DIR/module.mk may
# add rules and append to TEST_BINS; it must not redefine anything above.
TEST_BINS :=
include $(sort $(wildcard */module.mk tests/*/module.mk))

all: $(PROGRAMS)

# ---- tests ----
# Unit tests: tests/unit/NAME_test.c, one executable each, built with the sanitizers and
# linked with every component's sanitizer archive and every dependency.
UNIT_SRCS := $(wildcard tests/unit/*_test.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(SAN)/tests/%,$(UNIT_SRCS))
SAN_ARCHIVES := $(foreach c,$(COMPONENTS),$(SAN)/lib/lib$(c).a)
SAN_LDLIBS := $(foreach d,seccomp curl jansson yaml pq nghttp2,$(LIBS_SAN_$(d)))
$(SAN)/tests/%: tests/unit/%.c tests/unit/check.h $(SAN_ARCHIVES)
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -Itests/unit -o $@ $< -Wl,--start-group $(SAN_ARCHIVES) -Wl,--end-group $(SAN_LDLIBS)

# Fuzz targets: tests/fuzz/NAME_fuzz.c with LLVMFuzzerTestOneInput, built with clang.
FUZZ_SRCS := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ)/%,$(FUZZ_SRCS))
FUZZ_ARCHIVES := $(foreach c,$(COMPONENTS),$(FUZZ)/lib/lib$(c).a)
$(FUZZ)/%: tests/fuzz/%.c $(FUZZ_ARCHIVES)
	@mkdir -p $(@D)
	clang $(CFLAGS_FUZZ) -fsanitize=fuzzer -o $@ $< -Wl,--start-group $(FUZZ_ARCHIVES) \
	  -Wl,--end-group $(SAN_LDLIBS)

test-bins: all $(UNIT_BINS) $(FUZZ_BINS) $(TEST_BINS)

test: test-bins
	@mk/packages.sh test
	@tests/run.sh

fuzz: $(FUZZ_BINS)
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} tests/fuzz/run.sh $(FUZZ_BINS)

# ---- quality ----
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
fmt:
	clang-format -i $(C_FILES)
lint:
	@tests/lint.sh

# ---- cluster ----
up: all
	@mk/cluster.sh up
down:
	@mk/cluster.sh down

bench: all
	@bench/run.sh

clean:
	rm -rf $(BUILD)

.PHONY: all test test-bins fuzz fmt lint up down bench clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
