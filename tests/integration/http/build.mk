# Extra targets for the lib/http tests and benchmark, loaded on demand next to the main
# Makefile (make -f Makefile -f tests/integration/http/build.mk TARGET) so they reuse its
# flags and archives without the main build depending on them.
#   $(SAN)/tests/http_test_server   sanitizer build, for the integration tests
#   $(BUILD)/bench/http_test_server release build (musl, static, -O2), for bench/http
$(SAN)/tests/http_test_server: tests/integration/http/test_server.c $(SAN)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -o $@ $< $(SAN)/lib/liblib.a $(SAN_LDLIBS)
$(BUILD)/bench/http_test_server: tests/integration/http/test_server.c $(BUILD)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_REL) $(CFLAGS_REL) $(LDFLAGS_REL) -o $@ $< $(BUILD)/lib/liblib.a $(LIBS_REL_curl)
