# corepipe: one non-recursive Makefile.
#
#   make run        install missing packages, build, start corepiped with config/corepipe.yaml
#   make test       install, build, run unit, stress and integration tests
#   make asan       the same tests under ASan+UBSan (build/asan/)
#   make tsan       the concurrency stress tests under TSan (build/tsan/)
#   make fuzz       libFuzzer targets (FUZZ_SECONDS each)
#   make bench      perf/: in-process benchmarks, then corepiped side by side with a C++ gRPC
#                   server (perf/results/<time>.json, .md, plots); about 8 minutes
#   make bench-udp  the UDP path: corepipe vs testpmd io-forward (memif), vs kernel UDP (tap)
#   make bench-hol  head of line: small calls beside 3 MiB zstd-19 jobs, with and without quanta
#   make bench-sc005  SC-005: speech16k p95 at 1 and 4 clients against 2x the worker's time
#   make soak       1,000,000 requests: RSS must not grow
#   make format     clang-format every C file in place; format-check only checks
#   make check-cycles  no call cycle between source files, no include cycle between headers
#   make docs       regenerate docs/configuration.md's key table; docs-check only checks
#   make analyze    clang-tidy over dataplane/, control/, client/ (.clang-tidy)
#   make install    corepiped, its unit, config, man page, libcorepipe-udp (PREFIX, DESTDIR)
#   make deb        Debian packages in build/deb/; deb-test installs, serves, purges (root)
#   make image      the podman image (debootstrap base); image-test runs it and calls it
#
# Variants build into build/<variant>/; generated protobuf-c code goes to build/gen/.

SHELL        := /bin/bash
NPROC        := $(shell nproc 2>/dev/null || echo 2)
PKGCONF      ?= pkg-config
CC           ?= cc
PYTHON       ?= /usr/bin/python3
CLANG_FORMAT ?= clang-format-14
VARIANT      ?= release
FUZZ_SECONDS ?= 60

# What corepiped builds against (scripts/deps.sh, set "build"); the unit tests add cmocka (set
# "test"), so `make run` and `make deb` work without the test tools.
PKGS      := libdpdk liburcu-qsbr liburcu-cds ck libprotobuf-c grpc yaml-0.1 libsodium soxr libzstd \
	libmicrohttpd libsystemd
TEST_PKGS := cmocka

# Quiet by default; `make V=1` shows full commands.
ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @echo "  $(1)	$(2)"
endif

B   := build/$(VARIANT)
GEN := build/gen

# --- identity and install locations ----------------------------------------------------------
# The version is stated once, in VERSION; the revision is git describe at build time (a tarball
# or the .deb's staging copy has no .git: REVISION may be passed in, else "unknown").
VERSION    := $(shell cat VERSION)
REVISION   ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
PREFIX     ?= /usr/local
# The default configuration is $(SYSCONFDIR)/corepipe/corepipe.yaml, compiled into corepiped.
# /etc even for PREFIX=/usr/local, where an operator looks for it; SYSCONFDIR=$(PREFIX)/etc for
# a self-contained tree.
SYSCONFDIR ?= /etc

# pkg-config is only consulted when a target needs it (not for deps/clean/format).
NEED_PKGS := $(filter-out deps clean format format-check help deb deb-test image image-test,$(MAKECMDGOALS))
ifneq ($(if $(MAKECMDGOALS),$(NEED_PKGS),all),)
  ifneq ($(shell $(PKGCONF) --exists $(PKGS) 2>/dev/null && echo ok),ok)
    ifeq ($(filter deps run test asan tsan,$(MAKECMDGOALS)),)
      $(error missing packages for: $(PKGS); run 'make deps' (or scripts/deps.sh build run))
    endif
  endif
endif
# The tests need cmocka as well (scripts/deps.sh test); the server and the library do not.
NEED_TEST := $(if $(MAKECMDGOALS),$(filter all unit stress integration fuzz-bins bench,$(MAKECMDGOALS)),all)
ifneq ($(NEED_TEST),)
  ifneq ($(shell $(PKGCONF) --exists $(TEST_PKGS) 2>/dev/null && echo ok),ok)
    $(error missing packages for the tests: $(TEST_PKGS); run 'make test' or scripts/deps.sh test)
  endif
endif

# -isystem: the libraries' headers are not ours to hold to -Wpedantic (rte_rcu_qsbr.h is not).
PKG_CFLAGS = $(patsubst -I%,-isystem %,$(shell $(PKGCONF) --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   = $(shell $(PKGCONF) --libs $(PKGS) 2>/dev/null) -lstdc++ -lpthread -lm
TEST_LIBS  = $(shell $(PKGCONF) --libs $(TEST_PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-address-of-packed-member
OPT_release := -O2 -g -fno-omit-frame-pointer
OPT_asan    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -DCOREPIPE_ASAN
OPT_tsan    := -O1 -g -fno-omit-frame-pointer -fsanitize=thread -DCOREPIPE_TSAN
OPT_fuzz    := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-DCOREPIPE_FUZZ
OPT         := $(OPT_$(VARIANT))

CFLAGS_ALL = -std=gnu11 $(OPT) $(WARN) -MMD -MP -D_GNU_SOURCE -I. -I$(GEN) $(PKG_CFLAGS)
LDFLAGS_ALL = $(OPT) -rdynamic

# --- sources ---------------------------------------------------------------------------------
PROTOS   := proto/corepipe/v1/corepipe.proto proto/grpc/health/v1/health.proto \
	proto/grpc/reflection/v1/reflection.proto proto/grpc/reflection/v1alpha/reflection.proto
# etcd v3's API subset (registry.store: etcd, control/store_etcd.c): C only, not served.
ETCD_PROTOS := proto/etcd/mvccpb/kv.proto proto/etcd/etcdserverpb/rpc.proto
# google/protobuf/descriptor.proto (libprotobuf-dev) in C, for the reflection service's index.
DESC_INC   := /usr/include
DESC_PROTO := $(DESC_INC)/google/protobuf/descriptor.proto
PB_C     := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS) $(ETCD_PROTOS)) \
	$(GEN)/google/protobuf/descriptor.pb-c.c
PB_H     := $(PB_C:.c=.h)
# Everything the server serves, with imports and comments, as one FileDescriptorSet: embedded
# in corepiped for server reflection (control/reflection.c, control/protoset.S).
PROTOSET := $(GEN)/corepipe.protoset
# Python stubs are generated flat (corepipe_pb2, health_pb2, reflection_pb2 = v1): a
# build/gen/python/grpc/ package directory would shadow the grpcio package in the tests.
PY_GEN   := $(GEN)/python/corepipe_pb2.py $(GEN)/python/health_pb2.py \
	$(GEN)/python/reflection_pb2.py

DP_SRC   := $(wildcard dataplane/*.c dataplane/nodes/*.c)
CP_SRC   := $(filter-out control/main.c,$(wildcard control/*.c))
# C++ only where gRPC offers no C entry point (control/grpc_handoff.cc: one virtual call).
CP_CXX   := $(wildcard control/*.cc)
DP_OBJ   := $(patsubst %.c,$(B)/%.o,$(DP_SRC))
CP_OBJ   := $(patsubst %.c,$(B)/%.o,$(CP_SRC)) $(patsubst %.cc,$(B)/%.o,$(CP_CXX)) \
	    $(patsubst $(GEN)/%.c,$(B)/gen/%.o,$(PB_C)) $(B)/control/protoset.o
LIB_OBJ  := $(DP_OBJ) $(CP_OBJ)

UNIT_SRC   := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
STRESS_SRC := $(wildcard tests/stress/stress_*.c)
STRESS_BIN := $(patsubst tests/stress/%.c,$(B)/tests/stress/%,$(STRESS_SRC))
FAKE_SRC   := $(wildcard tests/fakes/*.c)
FAKE_OBJ   := $(patsubst %.c,$(B)/%.o,$(FAKE_SRC))
# Every program but the server links the objects it names and these archives, in this order
# (the fakes call the dataplane, control calls the dataplane, the dataplane calls neither).
# The linker takes from an archive only the objects a program reaches, and --as-needed keeps
# only the shared libraries those objects call: a node test links the dataplane and its
# libraries, not control/ or gRPC. This is sound because nothing registers itself from a
# constructor (node types are named by dataplane/node_table.c): an object no one reaches is
# not needed.
AR_B       := $(B)/archive
DP_A       := $(AR_B)/libdataplane.a
CP_A       := $(AR_B)/libcontrol.a
FAKE_A     := $(AR_B)/libfakes.a
LINK_LIBS   = $(CP_A) $(DP_A) -Wl,--as-needed $(PKG_LIBS)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(B)/tests/fuzz/%,$(FUZZ_SRC))
PERF_SRC   := $(wildcard perf/bench_*.c perf/micro/micro_*.c)
PERF_BIN   := $(patsubst perf/%.c,$(B)/perf/%,$(PERF_SRC)) $(B)/perf/corepipe-bench

# libcorepipe-udp, the kernel-socket client library: its own -fPIC objects under
# build/<variant>/libudp/ (no clash with the server's), compiled without the server's pkg-config
# flags, since it links with nothing but libc.
UDP_B      := $(B)/libudp
UDP_SRC    := client/udp/corepipe_udp.c dataplane/wire.c
UDP_OBJ    := $(patsubst %.c,$(UDP_B)/%.o,$(UDP_SRC))
UDP_A      := $(B)/lib/libcorepipe-udp.a
# The shared library's ABI version is its own (not the product's VERSION): the soname changes
# only when the ABI breaks. libcorepipe-udp.so (dev) -> .so.1 (soname) -> .so.1.0.0 (file).
UDP_SOVER  := 1
UDP_LIBVER := 1.0.0
UDP_SO     := $(B)/lib/libcorepipe-udp.so
UDP_SO_REAL := $(B)/lib/libcorepipe-udp.so.$(UDP_LIBVER)
UDP_ECHO   := $(B)/perf/udp_echo
# The C client library against a real server (tests/integration/test_udp.py runs it).
UDP_CHECK  := $(B)/tests/integration/udp_client_check

SERVER := $(B)/corepiped

# Keep objects between builds (they are intermediate for pattern rules).
.SECONDARY:

.PHONY: all deps run test unit stress integration integration-modes integration-all asan tsan fuzz fuzz-bins bench soak \
	clean format format-check help lib python docs docs-check
.DEFAULT_GOAL := all

all: $(SERVER) $(UNIT_BIN) $(STRESS_BIN) $(PERF_BIN) $(PY_GEN) lib $(UDP_ECHO) $(UDP_CHECK)

# docs/configuration.md's key table is corepiped --print-config-reference (control/config.c).
docs: $(SERVER)
	@scripts/config-reference.py $(SERVER) docs/configuration.md

docs-check: $(SERVER)
	@scripts/config-reference.py $(SERVER) docs/configuration.md --check

help:
	@sed -n '2,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@scripts/deps.sh

# --- generated code --------------------------------------------------------------------------
# Rewritten only when a value changes, so a new commit recompiles control/version.c alone.
BUILD_H := $(GEN)/corepipe_build.h
.PHONY: FORCE
$(BUILD_H): FORCE
	@mkdir -p $(GEN)
	@printf '#define COREPIPE_VERSION "%s"\n#define COREPIPE_REVISION "%s"\n#define COREPIPE_SYSCONFDIR "%s"\n' \
		'$(VERSION)' '$(REVISION)' '$(SYSCONFDIR)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(B)/control/version.o: $(BUILD_H)

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $<

$(GEN)/google/protobuf/descriptor.pb-c.c $(GEN)/google/protobuf/descriptor.pb-c.h: $(DESC_PROTO)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I$(DESC_INC) $<

$(PROTOSET): $(PROTOS)
	@mkdir -p $(GEN)
	protoc -Iproto --include_imports --include_source_info --descriptor_set_out=$@ $(PROTOS)

# The descriptor set as read-only data in the server (symbols cp_protoset, cp_protoset_end).
$(B)/control/protoset.o: control/protoset.S $(PROTOSET)
	@mkdir -p $(dir $@)
	$(call say,AS,$<)
	$(Q)$(CC) -c -DPROTOSET_FILE='"$(PROTOSET)"' $< -o $@

$(GEN)/python/reflection_pb2.py: proto/grpc/reflection/v1/reflection.proto
	@mkdir -p $(GEN)/python
	protoc --python_out=$(GEN)/python -I$(dir $<) $<

$(GEN)/python/corepipe_pb2.py: proto/corepipe/v1/corepipe.proto
	@mkdir -p $(GEN)/python
	protoc --python_out=$(GEN)/python -I$(dir $<) $<

$(GEN)/python/health_pb2.py: proto/grpc/health/v1/health.proto
	@mkdir -p $(GEN)/python
	protoc --python_out=$(GEN)/python -I$(dir $<) $<

# --- objects ---------------------------------------------------------------------------------
$(B)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -Wno-missing-braces -c $< -o $@

CXXFLAGS_ALL = -std=c++17 $(OPT) -Wall -Wextra -Werror -MMD -MP $(shell $(PKGCONF) --cflags grpc 2>/dev/null)
$(B)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)
	$(Q)$(CXX) $(CXXFLAGS_ALL) -c $< -o $@

$(B)/%.o: %.c | $(PB_H)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# The server links every object (all of it is the product).
$(SERVER): $(B)/control/main.o $(LIB_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# An archive is rebuilt when its list of members changes as well (X.members, rewritten only
# then): a deleted source must not leave its object behind in the archive.
AR_MEMBERS_libdataplane := $(DP_OBJ)
AR_MEMBERS_libcontrol   := $(CP_OBJ)
AR_MEMBERS_libfakes     := $(FAKE_OBJ)
$(AR_B)/%.members: FORCE
	@mkdir -p $(dir $@)
	@echo '$(AR_MEMBERS_$*)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(DP_A): $(DP_OBJ) $(AR_B)/libdataplane.members
$(CP_A): $(CP_OBJ) $(AR_B)/libcontrol.members
$(FAKE_A): $(FAKE_OBJ) $(AR_B)/libfakes.members
$(DP_A) $(CP_A) $(FAKE_A):
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $(filter %.o,$^)

# A unit test links its own object, the objects named as its prerequisites below (modules
# outside the archives: client/ctl, perf), then the fakes and the archives (LINK_LIBS).
$(B)/tests/unit/%: $(B)/tests/unit/%.o $(FAKE_A) $(CP_A) $(DP_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(FAKE_A) $(LINK_LIBS) $(TEST_LIBS) \
		$(UNIT_LIBS)

# test_node_table checks dataplane/node_table.c against this list of the stems of
# dataplane/nodes/'s .c files (rewritten only when the list changes).
NODE_FILES_H := $(GEN)/dp_node_files.h
$(NODE_FILES_H): FORCE
	@mkdir -p $(GEN)
	@printf '/* The .c files of dataplane/nodes/ (Makefile). */\n#define DP_NODE_FILES %s\n' \
		'$(foreach f,$(wildcard dataplane/nodes/*.c),"$(basename $(notdir $(f)))",)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(B)/tests/unit/dataplane/test_node_table.o: $(NODE_FILES_H)

# The in-process UDP test makes its port with rte_eth_from_rings() (the net_ring PMD's API).
$(B)/tests/unit/dataplane/test_udp: PKG_LIBS += -lrte_net_ring

$(B)/tests/stress/%: $(B)/tests/stress/%.o $(CP_A) $(DP_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_LIBS)

$(B)/tests/fuzz/%: $(B)/tests/fuzz/%.o $(CP_A) $(DP_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -fsanitize-link-c++-runtime -o $@ \
		$(filter %.o,$^) $(LINK_LIBS)

$(B)/perf/%: $(B)/perf/%.o $(CP_A) $(DP_A)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_LIBS)

# Every perf tool with options parses them from a table (perf/perf_opt.h).
PERF_OPT_OBJ := $(B)/perf/perf_opt.o
$(B)/perf/bench_udp_gen: $(PERF_OPT_OBJ)

# The load generator is a gRPC and UDP client: it needs the generated messages and
# libcorepipe-udp, not the server. Its core and one file per protocol: perf/corepipe_bench*.c.
CB_OBJ := $(patsubst %.c,$(B)/%.o,$(wildcard perf/corepipe_bench*.c)) $(PERF_OPT_OBJ)
$(B)/perf/corepipe-bench: $(CB_OBJ) $(B)/perf/corepipe_report.o \
		$(B)/gen/corepipe/v1/corepipe.pb-c.o $(UDP_A)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# --- libcorepipe-udp and the kernel UDP echo server ------------------------------------------
CFLAGS_UDP = -std=gnu11 $(OPT) $(WARN) -MMD -MP -D_GNU_SOURCE -I. -fPIC

$(UDP_B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$< (pic))
	$(Q)$(CC) $(CFLAGS_UDP) -c $< -o $@

lib: $(UDP_A) $(UDP_SO_REAL) $(UDP_SO)

$(UDP_A): $(UDP_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Only the corepipe_udp_* API is exported (version script); --no-undefined proves that libc
# is all it needs.
$(UDP_SO_REAL): $(UDP_OBJ) client/udp/corepipe_udp.map
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(OPT) -shared -Wl,-soname,libcorepipe-udp.so.$(UDP_SOVER) -Wl,--no-undefined \
		-Wl,--version-script=client/udp/corepipe_udp.map -o $@ $(UDP_OBJ)

$(UDP_SO): $(UDP_SO_REAL)
	$(Q)ln -sf $(notdir $<) $(B)/lib/libcorepipe-udp.so.$(UDP_SOVER)
	$(Q)ln -sf libcorepipe-udp.so.$(UDP_SOVER) $@

# --- the Python client (clients/python) --------------------------------------------------------
# build/python/lib: the package with its generated stubs, usable as PYTHONPATH=build/python/lib;
# build/python/dist: the wheel (pip install it, or pip install ./clients/python, in a venv with
# --system-site-packages for Debian's grpcio and protobuf). Built offline with setuptools.
PY_B     := build/python
PY_WHEEL := $(PY_B)/dist/corepipe-0.3.0-py3-none-any.whl
PY_SRC   := clients/python/setup.py $(wildcard clients/python/corepipe/*.py) \
	proto/corepipe/v1/corepipe.proto proto/grpc/health/v1/health.proto

python: $(PY_WHEEL)

$(PY_WHEEL): $(PY_SRC)
	@rm -rf $(PY_B) && mkdir -p $(PY_B)
	$(call say,WHEEL,$@)
	$(Q)cd clients/python && $(PYTHON) -W ignore setup.py -q egg_info --egg-base $(abspath $(PY_B)) \
		build --build-base $(abspath $(PY_B))/build --build-lib $(abspath $(PY_B))/lib \
		bdist_wheel -d $(abspath $(PY_B))/dist --bdist-dir $(abspath $(PY_B))/bdist \
		> $(abspath $(PY_B))/build.log 2>&1 || { cat $(abspath $(PY_B))/build.log; exit 1; }

# --- corepipectl (client/ctl/): the command-line client, on the gRPC C core ------------------
# Its own pkg-config set: jansson (--json) and libcurl (top scrapes /metrics) are the CLI's only.
CTL_PKGS := grpc libprotobuf-c yaml-0.1 jansson libcurl
CTL_SRC  := $(wildcard client/ctl/*.c)
CTL_OBJ  := $(patsubst %.c,$(B)/%.o,$(CTL_SRC))
CTL      := $(B)/corepipectl
CTL_LIBS  = $(shell $(PKGCONF) --libs $(CTL_PKGS) 2>/dev/null) -lm

$(B)/client/ctl/%.o: CFLAGS_ALL += $(shell $(PKGCONF) --cflags jansson libcurl 2>/dev/null)

$(CTL): $(CTL_OBJ) $(B)/gen/corepipe/v1/corepipe.pb-c.o $(B)/gen/grpc/health/v1/health.pb-c.o
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CTL_LIBS)

# examples/c/execute.c: the C example on the gRPC C core (tests/integration/test_examples.py).
EX_C := $(B)/examples/execute
$(EX_C): $(B)/examples/c/execute.o $(B)/gen/corepipe/v1/corepipe.pb-c.o
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CTL_LIBS)

# The CLI, the C example and the Python package are part of `make` (defined here, after `all`).
all: $(CTL) $(EX_C) $(PY_WHEEL)

# Unit tests of its pure modules (tests/unit/ctl/test_<module>.c) link the module's object.
$(B)/tests/unit/ctl/test_wav: $(B)/client/ctl/wav.o
$(B)/tests/unit/ctl/test_pipefile: $(B)/client/ctl/pipefile.o
$(B)/tests/unit/ctl/test_prom: $(B)/client/ctl/prom.o
$(B)/tests/unit/ctl/test_pbjson: $(B)/client/ctl/pbjson.o
$(B)/tests/unit/ctl/%: UNIT_LIBS += -ljansson
$(B)/tests/unit/perf/test_corepipe_report: $(B)/perf/corepipe_report.o
$(B)/tests/unit/perf/test_perf_opt: $(B)/perf/perf_opt.o

# The client test links the client object; the wire code comes from the dataplane archive (no
# duplicate symbols).
$(B)/tests/unit/client/test_corepipe_udp: $(UDP_B)/client/udp/corepipe_udp.o

# perf/udp_echo: the kernel path (recvmmsg/sendmmsg), linked with the wire code only, no DPDK.
$(UDP_ECHO): $(B)/perf/udp_echo.o $(B)/dataplane/wire.o $(PERF_OPT_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(OPT) -o $@ $^

# perf/bench_udp_kernel: the kernel-socket load client of the UDP benchmarks, linked with
# libcorepipe-udp and libc only (no DPDK), like a user's program would be.
$(B)/perf/bench_udp_kernel: $(B)/perf/bench_udp_kernel.o $(PERF_OPT_OBJ) $(UDP_A)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(OPT) -o $@ $^

# perf/bench_udp_ring: in-process over net_ring (rte_eth_from_rings), which pkg-config's libdpdk
# does not list.
$(B)/perf/bench_udp_ring: $(B)/perf/bench_udp_ring.o $(PERF_OPT_OBJ) $(CP_A) $(DP_A)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LINK_LIBS) -lrte_net_ring

# tests/integration/udp_client_check: linked with libcorepipe-udp.a and nothing else (libc), as
# a program outside the tree would be.
$(UDP_CHECK): $(UDP_B)/tests/integration/udp_client_check.o $(UDP_A)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(OPT) -o $@ $< $(UDP_A)

# --- install ---------------------------------------------------------------------------------
# GNU-style directories under PREFIX (default /usr/local), staged under DESTDIR:
#   make install                               /usr/local/sbin/corepiped, /etc/corepipe/...
#   make install PREFIX=/usr DESTDIR=/tmp/root  what debian/rules does
SBINDIR        ?= $(PREFIX)/sbin
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
PKGCONFIGDIR   ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
INSTALL        ?= install
# Every man page in man/: corepiped.8 now, the CLI's section-1 page when it lands.
MAN1 := $(wildcard man/*.1)
MAN8 := $(wildcard man/*.8)

# Files whose install paths are substituted in (the unit's ExecStart, the .pc's libdir).
SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g' -e 's|@UDP_LIBVER@|$(UDP_LIBVER)|g'
$(B)/install/corepiped.service: deploy/systemd/corepiped.service.in FORCE
	@mkdir -p $(dir $@)
	@$(SUBST) $< > $@.tmp && (cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@)
$(B)/install/corepipe-udp.pc: client/udp/corepipe-udp.pc.in FORCE
	@mkdir -p $(dir $@)
	@$(SUBST) $< > $@.tmp && (cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@)

.PHONY: install install-server install-lib
install: install-server install-lib install-cli

install-server: $(SERVER) $(B)/install/corepiped.service
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/corepipe \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	$(INSTALL) -m 755 $(SERVER) $(DESTDIR)$(SBINDIR)/corepiped
	@# The shipped configuration, never over one an operator edited.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/corepipe/corepipe.yaml ]; then \
		echo "install: $(DESTDIR)$(SYSCONFDIR)/corepipe/corepipe.yaml exists; not replaced"; \
	else \
		$(INSTALL) -m 644 config/corepipe.yaml $(DESTDIR)$(SYSCONFDIR)/corepipe/corepipe.yaml; \
	fi
	$(INSTALL) -m 644 $(B)/install/corepiped.service $(DESTDIR)$(SYSTEMDUNITDIR)/corepiped.service
	$(INSTALL) -m 644 deploy/systemd/corepipe.sysusers $(DESTDIR)$(SYSUSERSDIR)/corepipe.conf
	@for m in $(MAN1); do $(INSTALL) -d $(DESTDIR)$(MANDIR)/man1 && \
		$(INSTALL) -m 644 $$m $(DESTDIR)$(MANDIR)/man1/ || exit 1; done
	@for m in $(MAN8); do $(INSTALL) -d $(DESTDIR)$(MANDIR)/man8 && \
		$(INSTALL) -m 644 $$m $(DESTDIR)$(MANDIR)/man8/ || exit 1; done

install-lib: $(UDP_SO_REAL) $(UDP_SO) $(UDP_A) $(B)/install/corepipe-udp.pc
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 $(UDP_SO_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf libcorepipe-udp.so.$(UDP_LIBVER) $(DESTDIR)$(LIBDIR)/libcorepipe-udp.so.$(UDP_SOVER)
	ln -sf libcorepipe-udp.so.$(UDP_SOVER) $(DESTDIR)$(LIBDIR)/libcorepipe-udp.so
	$(INSTALL) -m 644 $(UDP_A) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 644 client/udp/corepipe_udp.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 644 $(B)/install/corepipe-udp.pc $(DESTDIR)$(PKGCONFIGDIR)/

# --- Debian package, container image (slow: own targets, not in `make test`) -----------------
# make deb         build/deb/*.deb via dpkg-buildpackage (about 3 minutes here)
# make deb-test    install them on this machine, serve a call, remove and purge (root)
# make image       a Debian root file system by debootstrap, the .deb installed in it, imported
#                  into podman and built with deploy/container/Containerfile
# make image-test  run that image with podman and answer a gRPC call
.PHONY: deb deb-test image image-test
deb:
	@scripts/deps.sh build package
	@scripts/deb.sh
deb-test: $(PY_GEN)
	@scripts/deb-test.sh
image:
	@scripts/deps.sh package
	@scripts/image.sh build
image-test: $(PY_GEN)
	@scripts/image.sh test

# ---- install-cli: corepipectl, its man page and the Python package ---------------------------
# Kept apart from the server's install rules so that `make install` (and the .deb) can take it
# as a prerequisite: `install: install-cli`. DESTDIR for staging; PYDIR is where the Python
# package goes (Debian's dist-packages for /usr; the wheel is unpacked there, which is what
# installing a pure-Python wheel does, dist-info included).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
PYDIR   ?= $(PREFIX)/lib/python3/dist-packages
.PHONY: install-cli uninstall-cli
install-cli: $(CTL) $(PY_WHEEL)
	install -D -m 0755 $(CTL) $(DESTDIR)$(BINDIR)/corepipectl
	install -D -m 0644 docs/corepipectl.1 $(DESTDIR)$(MANDIR)/man1/corepipectl.1
	install -d $(DESTDIR)$(PYDIR)
	$(PYTHON) -m zipfile -e $(PY_WHEEL) $(DESTDIR)$(PYDIR)

uninstall-cli:
	rm -f $(DESTDIR)$(BINDIR)/corepipectl $(DESTDIR)$(MANDIR)/man1/corepipectl.1
	rm -rf $(DESTDIR)$(PYDIR)/corepipe $(DESTDIR)$(PYDIR)/corepipe-*.dist-info
# ---- end install-cli ---------------------------------------------------------------------------

# --- run and test ----------------------------------------------------------------------------
# `make run` installs what building and running need (scripts/deps.sh run build), `make test`
# adds the test set; `make deps` installs all three.
run:
	@scripts/deps.sh run build
	@$(MAKE) --no-print-directory -j$(NPROC) $(SERVER)
	$(SERVER) --config config/corepipe.yaml

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

stress: $(STRESS_BIN)
	@for t in $(STRESS_BIN); do echo "== $$t"; $$t || exit 1; done

# Integration modules run as separate processes, IT_JOBS at a time (default nproc), longest first
# (scripts/run-integration.py; a module with RUN_ALONE = "why" runs with nothing beside it).
# TESTS='test_api test_stream' runs some modules only; CP_TEST_MODE picks the lcore map
# (tests/integration/serverlib.py: default, one-lcore, frontends2). Logs and the durations that
# order the next run: build/<variant>/integration/.
TESTS   ?=
IT_JOBS ?= $(NPROC)
IT_ALL  := $(sort $(patsubst tests/integration/%.py,%,$(wildcard tests/integration/test_*.py)))
# The call and stream tests also run with two front ends.
IT_FRONTENDS2 := test_api test_stream test_stream_buffers test_concurrency test_stats test_auth test_tls \
	test_load_patterns test_frontend
# The one-lcore map runs every module but those whose subject is not where the work runs:
# packaging, docs, clients and tools (their server calls are the ones test_api makes) and the
# fleet's orchestration (etcd, restarts, balancing). They run in the default map only.
IT_MAP_FREE := test_config_docs test_k8s_manifests test_install test_systemd test_examples \
	test_perf_tools test_bench_client test_reflection test_reflection_js test_metrics_conventions \
	test_config_cli test_cli test_python_client test_list_pipelines test_registry_store \
	test_registry_etcd test_registry_etcd_secure test_registry_etcd_cluster test_fleet_lb \
	test_fleet_rolling
IT_ONE_LCORE := $(filter-out $(IT_MAP_FREE),$(IT_ALL))
IT_DEFAULT = $(addprefix $(or $(CP_TEST_MODE),default):,$(if $(TESTS),$(TESTS),$(IT_ALL)))
IT_MODES   = $(addprefix one-lcore:,$(IT_ONE_LCORE)) $(addprefix frontends2:,$(IT_FRONTENDS2))
IT_NEEDS   = $(SERVER) $(CTL) $(EX_C) $(PY_WHEEL) $(PY_GEN) $(UDP_ECHO) $(UDP_CHECK)
IT_RUN     = COREPIPED=$(abspath $(SERVER)) \
	PYTHONPATH=$(abspath $(GEN)/python):$(abspath tests/integration) \
	$(PYTHON) scripts/run-integration.py -j $(IT_JOBS) --logs $(B)/integration/logs \
	--times $(B)/integration/times.json

integration: $(IT_NEEDS)
	@$(IT_RUN) $(IT_DEFAULT)

# The same suite with a single lcore (front end, pipeline work and control on one reactor, as
# in a 1-CPU container), and the call and stream tests with two front ends.
integration-modes: $(IT_NEEDS)
	@$(IT_RUN) $(IT_MODES)

# All three maps in one pool (what `make test` runs).
integration-all: $(IT_NEEDS)
	@$(IT_RUN) $(IT_DEFAULT) $(IT_MODES)

test:
	@scripts/deps.sh run build test
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@$(MAKE) --no-print-directory unit stress integration-all

# Every test of make asan runs with these options. tests/sanitizer/lsan_leak leaks on purpose and
# runs first: unless LeakSanitizer reports it under the same options, the run fails (a leak
# must never be hidden by a bad suppressions file or a disabled leak check).
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
LSAN_LEAK := build/asan/tests/sanitizer/lsan_leak

$(B)/tests/sanitizer/%: $(B)/tests/sanitizer/%.o
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lpthread

asan: deps
	@$(MAKE) --no-print-directory -j$(NPROC) VARIANT=asan all $(LSAN_LEAK)
	$(ASAN_ENV) tests/sanitizer/lsan_expect_leak.sh $(LSAN_LEAK)
	$(ASAN_ENV) $(MAKE) --no-print-directory VARIANT=asan unit stress integration

tsan: deps
	@$(MAKE) --no-print-directory VARIANT=tsan $(patsubst build/release/%,build/tsan/%,$(STRESS_BIN))
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(abspath tests/tsan.supp) \
		$(MAKE) --no-print-directory VARIANT=tsan stress

fuzz-bins: $(FUZZ_BIN)

# Each target runs FUZZ_SECONDS on a scratch copy of its seed corpus (the committed corpus
# only grows by hand: see tests/fuzz/README.md). clang++ as well as clang: the fuzzer flags are
# clang's, and control/grpc_handoff.cc is compiled with them too (its link then needs UBSan's C++
# runtime). pipefail: a crash fails the run (the fuzzer's exit status, not grep's, decides).
fuzz: deps
	@$(MAKE) --no-print-directory -j$(NPROC) VARIANT=fuzz CC=clang CXX=clang++ fuzz-bins
	@set -eo pipefail; for t in $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC)); do \
		c=tests/fuzz/corpus/$${t#fuzz_}; w=build/fuzz/corpus/$${t#fuzz_}; \
		mkdir -p $$w; cp -n $$c/* $$w/ 2>/dev/null || true; \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		build/fuzz/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=build/fuzz/ $$w $$c 2>&1 | grep -E 'stat::|ERROR|SUMMARY|Done' ; \
	done

bench: all $(B)/perf/ref_server
	@scripts/bench.sh $(B)

# --- microbenchmarks (perf/micro/, see perf/micro/README.md) ---------------------------------
# `make bench-micro` builds every perf/micro/micro_* binary and runs each once (stand-alone, no
# arguments, a few seconds each): TSC cycles per operation, medians of interleaved rounds.
MICRO_BIN := $(filter $(B)/perf/micro/%,$(PERF_BIN))
.PHONY: bench-micro
bench-micro: $(MICRO_BIN)
	@set -e; for m in $(MICRO_BIN); do $$m; echo; done

# ---- bench-hol: head of line (perf/hol.sh, docs/performance.md "Fair execution") ----------
# 64 B calls at 16 outstanding while 0/1/2/4 clients run 3 MiB zstd-19 jobs on one worker,
# with the bulk lane (quantum 50 us) and without (QUANTUM=0). About 2 minutes.
HOL_SECONDS ?= 6
.PHONY: bench-hol
bench-hol: all
	perf/hol.sh $(B) $(HOL_SECONDS)
	QUANTUM=0 perf/hol.sh $(B) $(HOL_SECONDS)
# ---- end bench-hol ---------------------------------------------------------------------------

# ---- bench-sc005: seed criterion SC-005 (perf/sc005.sh, docs/performance.md "Fair execution") -
# 1 s of 48 kHz stereo through speech16k, unary, at 1 and 4 clients: the client's p95 against
# twice the worker's own time per request (read from the server). About 30 s.
SC005_SECONDS ?= 8
.PHONY: bench-sc005
bench-sc005: all
	perf/sc005.sh $(B) $(SC005_SECONDS)
# ---- end bench-sc005 -------------------------------------------------------------------------

# ---- bench-udp: the UDP path side by side (perf/udp_sidebyside.sh; root: tap, veth, netns) --
# net_memif: perf/bench_udp_gen vs dpdk-testpmd io-forward and corepiped; net_tap: corepiped vs
# perf/udp_echo (veth + netns, loopback) under perf/bench_udp_kernel. About 3 minutes; writes
# perf/results/<UTC>-udp.json. Kept out of `make bench` (scripts/bench.sh) for now.
UDP_ROUNDS ?= 3
UDP_SECONDS ?= 4
.PHONY: bench-udp
bench-udp: all
	perf/udp_sidebyside.sh $(B) $(UDP_ROUNDS) $(UDP_SECONDS)
# ---- end bench-udp ---------------------------------------------------------------------------

# The C++ reference server for side-by-side figures (perf/ref/ref_server.cc): built only for
# `make bench`, from Debian's libgrpc++ and protobuf C++ code generated here.
REF_GEN := $(GEN)/cpp
$(REF_GEN)/corepipe/v1/corepipe.grpc.pb.cc: proto/corepipe/v1/corepipe.proto
	@mkdir -p $(REF_GEN)
	$(Q)protoc -Iproto --cpp_out=$(REF_GEN) --grpc_out=$(REF_GEN) \
		--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) $<
$(B)/perf/ref_server: perf/ref/ref_server.cc $(REF_GEN)/corepipe/v1/corepipe.grpc.pb.cc
	@mkdir -p $(@D)
	@echo "  CXX	$@"
	$(Q)$(CXX) -std=c++17 -O2 -g -I$(REF_GEN) -o $@ $< $(REF_GEN)/corepipe/v1/corepipe.pb.cc \
		$(REF_GEN)/corepipe/v1/corepipe.grpc.pb.cc \
		$$(pkg-config --cflags --libs grpc++ protobuf) -lpthread

# Memory must not grow with traffic (1,000,000 requests; about 2 minutes here).
soak: all
	@scripts/soak.sh $(B)

clean:
	rm -rf build

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(CLANG_FORMAT) -i $(C_FILES)

format-check:
	$(CLANG_FORMAT) --dry-run --Werror $(C_FILES)

# The layering (docs/ARCHITECTURE.md, "Layering"): no call cycle between the C files of
# control/ and dataplane/, no #include cycle between the project's headers (Universal Ctags).
.PHONY: check-cycles
check-cycles:
	$(PYTHON) scripts/check-cycles.py

# Static analysis of the product code (dataplane/, control/, client/): clang-tidy with
# .clang-tidy (disabled checks and why) and .clang-tidy-suppress (per-file exceptions and why),
# one process per file, any finding fails. Pinned like clang-format. Slow: a few seconds of
# CPU per file (DPDK and gRPC headers), so not part of make test.
CLANG_TIDY  ?= clang-tidy-14
ANALYZE_SRC := $(sort $(DP_SRC) $(CP_SRC) control/main.c $(wildcard client/udp/*.c) $(CTL_SRC))
ANALYZE_FLAGS = -std=gnu11 -D_GNU_SOURCE -I. -I$(GEN) $(PKG_CFLAGS) \
	$(shell $(PKGCONF) --cflags jansson libcurl 2>/dev/null)
.PHONY: analyze
analyze: $(PB_H) $(BUILD_H)
	@printf '%s\n' $(ANALYZE_SRC) | CLANG_TIDY=$(CLANG_TIDY) \
		xargs -P$(NPROC) -I{} scripts/tidy-one.sh {} -- $(ANALYZE_FLAGS)

-include $(shell find build/$(VARIANT) -name '*.d' 2>/dev/null)
