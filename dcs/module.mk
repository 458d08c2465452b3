# DCS state machine extras (owner: the mvcc/lease/watch/v3/v2 engineer; the Raft simulator
# lives in tests/sim/module.mk). The golden-test driver: the store and codecs behind a
# stdin/stdout request loop, compared against real etcd by tests/integration/dcs/*.t.
$(SAN)/tests/dcs_driver: tests/integration/dcs/dcs_driver.c $(SAN)/lib/libdcs.a $(SAN)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -o $@ $< $(SAN)/lib/libdcs.a $(SAN)/lib/liblib.a -ljansson

TEST_BINS += $(SAN)/tests/dcs_driver
