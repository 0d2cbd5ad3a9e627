# h2lb build. `make` builds build/h2lb; `make test` runs every test.
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= gcc
BUILD := build

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
	  -Iinclude -Iuser -I$(BUILD) -D_GNU_SOURCE
# `h2lb version`: the git description of the tree built, or VERSION
# outside a git tree.
VERSION := 0.1.0
H2LB_VERSION := $(or $(shell git describe --always --dirty 2>/dev/null),$(VERSION))
CFLAGS += -DH2LB_VERSION=\"$(H2LB_VERSION)\"
LDLIBS := -lbpf -lelf -lz -lcurl -ljson-c -lyaml -lmnl -lnftables -lpthread
BPF_CFLAGS := -target bpf -mcpu=v3 -g -O2 -Wall -Werror -D__BPF__ \
	      -I. -Iinclude -Ibpf

# Each bpf/*.bpf.c is compiled on its own, then all are linked into one
# object (bpftool gen object) with one skeleton: the maps are defined weak
# in bpf/maps.h, so the objects share one of each.
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.o,$(BPF_SRCS))
SKELS := $(BUILD)/h2lb.skel.h
BPF_HDRS := $(wildcard bpf/*.h) $(wildcard include/*.h) vmlinux.h

USER_SRCS := $(wildcard user/*.c user/k8s/*.c)
USER_OBJS := $(patsubst user/%.c,$(BUILD)/user/%.o,$(USER_SRCS))
USER_HDRS := $(wildcard user/*.h user/k8s/*.h) $(wildcard include/*.h)
# Everything but main(), for the unit tests to link against.
LIB_OBJS := $(filter-out $(BUILD)/user/main.o,$(USER_OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))

# grpc-go test peers (tests/peers/go/build.sh: Debian's Go and grpc-go,
# GOPATH mode, nothing downloaded); not part of `all`, `make test` builds them.
GO_PEERS := $(BUILD)/peers/interop_server $(BUILD)/peers/interop_client \
	    $(BUILD)/peers/h2c_client
GO_PEER_SRCS := $(wildcard tests/peers/go/*/*.go) tests/peers/go/build.sh \
		tests/peers/interop.proto

.SECONDARY:
.DELETE_ON_ERROR:
.PHONY: all clean test test-fast-path unit format vmlinux deps demo bench peers
all: $(BUILD)/h2lb $(UNIT_BINS)

peers: $(GO_PEERS)

$(GO_PEERS) &: $(GO_PEER_SRCS)
	bash tests/peers/go/build.sh $(BUILD)/peers

$(BUILD)/bpf/%.o: bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/h2lb.bpf.o: $(BPF_OBJS)
	$(BPFTOOL) gen object $@ $^

$(BUILD)/h2lb.skel.h: $(BUILD)/h2lb.bpf.o
	$(BPFTOOL) gen skeleton $< name h2lb_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/user/%.o: user/%.c $(USER_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/h2lb: $(USER_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iuser -Itests/unit $< $(LIB_OBJS) -o $@ $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)

# Tests need root (namespaces, BPF); tests/run.sh prints "N passed, N failed".
test: all peers
	bash tests/run.sh

# The same suite with --fast-path on for clients in a cgroup of the test's
# own (docs/fast-path.md): a parameter, not copies.
test-fast-path: all peers
	H2LB_TEST_FAST_PATH=1 bash tests/run.sh

demo: all
	bash scripts/demo.sh

# The bench's floor target (tests/bench/floor/): the fast path's kernel
# hand-offs with no rules, to measure h2lb against.
FLOOR := $(BUILD)/bench/floor $(BUILD)/bench/floor.bpf.o

$(BUILD)/bench/floor.bpf.o: tests/bench/floor/floor.bpf.c vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bench/floor: tests/bench/floor/floor.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@ -lbpf

bench: all $(FLOOR)
	bash tests/bench/run.sh

deps:
	bash scripts/setup-deps.sh

# Regenerate vmlinux.h from the running kernel's BTF.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

format:
	clang-format -i $(wildcard bpf/*.c bpf/*.h user/*.c user/*.h \
		user/k8s/*.c user/k8s/*.h include/*.h tests/unit/*.c \
		tests/unit/*.h tests/bench/floor/*.c)

clean:
	rm -rf $(BUILD)
