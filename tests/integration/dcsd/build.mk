# Loaded on demand by tests/integration/dcsd/dcsd.py (make -f Makefile -f THIS TARGET), as
# tests/integration/http/build.mk: the main Makefile only includes one directory level.
# appliance-dcs under ASan+UBSan for the integration tests (tests/integration/dcsd/*.t):
# memory errors in the server abort a member and fail the test.
$(SAN)/bin/appliance-dcs: dcs/main.c $(SAN)/lib/libdcs.a $(SAN)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -o $@ $< $(SAN)/lib/libdcs.a $(SAN)/lib/liblib.a -ljansson -lnghttp2

