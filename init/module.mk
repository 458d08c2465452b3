# The Makefile includes */module.mk and tests/*/module.mk, not tests/integration/init/:
# pull in the init integration tests' helper build from here.
include tests/integration/init/module.mk
