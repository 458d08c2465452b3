# Helper programs for tests/integration/init/*.t (static musl, like what they test).
# Included from init/module.mk; guarded in case the Makefile ever includes this directly.
ifndef INIT_INTEGRATION_MK
INIT_INTEGRATION_MK := 1
$(BUILD)/tests/init_probe: tests/integration/init/init_probe.c | $(BUILD)/deps.mk
	@mkdir -p $(@D)
	$(CC_REL) $(CFLAGS_REL) $(LDFLAGS_REL) -o $@ $<
TEST_BINS += $(BUILD)/tests/init_probe
endif
