# Extra targets for the lib/http tests and benchmark, loaded on demand next to the main
# Makefile (make -f Makefile -f tests/integration/http/build.mk TARGET) so they reuse its
# flags and archives without the main build depending on them.
#   $(SAN)/tests/http_test_server   sanitizer build, for the integration tests
#   $(BUILD)/bench/http_test_server release build (musl, static, -O2), for bench/http
#   $(BUILD)/tests/http_client_test_release  the client unit test as a release binary
$(SAN)/tests/http_test_server: tests/integration/http/test_server.c $(SAN)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -o $@ $< $(SAN)/lib/liblib.a $(SAN_LDLIBS)
$(BUILD)/bench/http_test_server: tests/integration/http/test_server.c $(BUILD)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_REL) $(CFLAGS_REL) $(LDFLAGS_REL) -o $@ $< $(BUILD)/lib/liblib.a $(LIBS_REL_curl)
# The client test again as a release binary (musl, static, the private prefix's HTTP-only
# curl with its threaded resolver), so CI proves the client works in both builds.
$(BUILD)/tests/http_client_test_release: tests/unit/http_client_test.c tests/unit/check.h $(BUILD)/lib/liblib.a
	@mkdir -p $(@D)
	$(CC_REL) $(CFLAGS_REL) -Itests/unit $(LDFLAGS_REL) -o $@ $< $(BUILD)/lib/liblib.a $(LIBS_REL_curl)
