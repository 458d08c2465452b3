# Raft simulator (tests/sim) and the raft/WAL benchmark driver.
#   build/sim/raft-sim       sanitizer build (links the dcs sanitizer archive)
#   build/sim/raft-sim-fast  -O2 without sanitizers, for the 10,000-seed CI run and soaks
#   build/sim/wal-crash      every crash point of a WAL/snapshot workload (sanitizer build)
#   make sim-soak SEEDS=100000 [FIRST=1]   long soak with the fast build
SIM_SRCS := tests/sim/sim.c tests/sim/sim_disk.c
SIM_CORE := dcs/raft.c dcs/raft_conf.c dcs/raft_msg.c dcs/wal.c dcs/wal_fs_posix.c dcs/snap.c \
            dcs/crc32c.c
SIM_HDRS := $(wildcard tests/sim/*.h dcs/raft*.h dcs/wal*.h dcs/snap*.h dcs/crc32c.h)

$(BUILD)/sim/raft-sim: $(SIM_SRCS) $(SIM_HDRS) $(SAN)/lib/libdcs.a
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -o $@ $(SIM_SRCS) $(SAN)/lib/libdcs.a

$(BUILD)/sim/wal-crash: tests/sim/wal_crash.c tests/sim/sim_disk.c $(SIM_HDRS) $(SAN)/lib/libdcs.a
	@mkdir -p $(@D)
	$(CC_SAN) $(CFLAGS_SAN) -o $@ tests/sim/wal_crash.c tests/sim/sim_disk.c $(SAN)/lib/libdcs.a

$(BUILD)/sim/raft-sim-fast: $(SIM_SRCS) $(SIM_CORE) $(SIM_HDRS)
	@mkdir -p $(@D)
	$(CC_SAN) $(COMMON) -O2 -o $@ $(SIM_SRCS) $(SIM_CORE)

$(BUILD)/sim/wal-bench: bench/raft/wal_bench.c $(SIM_CORE) $(SIM_HDRS)
	@mkdir -p $(@D)
	$(CC_SAN) $(COMMON) -O2 -o $@ bench/raft/wal_bench.c $(SIM_CORE)

TEST_BINS += $(BUILD)/sim/raft-sim $(BUILD)/sim/raft-sim-fast $(BUILD)/sim/wal-bench \
             $(BUILD)/sim/wal-crash

SEEDS ?= 100000
FIRST ?= 1
sim-soak: $(BUILD)/sim/raft-sim-fast
	$(BUILD)/sim/raft-sim-fast --seeds $(FIRST) $(SEEDS)

.PHONY: sim-soak
