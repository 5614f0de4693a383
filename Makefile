# pinfer - build, test, install.
#
#   make                  library, tool, tests and benchmarks in build/
#   make check            C unit tests, CLI golden tests (build/)
#   make SAN=1 check      the same under ASan + UBSan, in build-san/
#   make fuzz             libFuzzer targets (clang), in build-fuzz/
#   make tsan             executor and streams tests under ThreadSanitizer
#                         (clang, LLVM libomp), in build-tsan/, and run them
#   make install PREFIX=/usr/local DESTDIR=
#
# Every tests/unit/test_*.c is a cmocka program linked with the static
# library; every bench/bench_*.c a benchmark; every tests/fuzz/fuzz_*.c a
# libFuzzer target.  Adding a file is enough: no list to edit.

PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  ?= $(PREFIX)/lib
SAN     ?=

CC      ?= cc
ifeq ($(SAN),1)
B       := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT     := -O1
else
B       := build
SANFLAGS :=
OPT     := -O2
endif

HWLOC_CFLAGS := $(shell pkg-config --cflags hwloc)
HWLOC_LIBS   := $(shell pkg-config --libs hwloc)

CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -fPIC $(SANFLAGS) $(HWLOC_CFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(HWLOC_LIBS) -lpthread -lm
# The runtime (pools, pinning) calls OpenMP: those objects, the shared library,
# tests and benchmarks use it.  The pinfer tool does not reference them, so
# linking it with the static archive does not pull OpenMP in.
OPENMP   ?= -fopenmp
OMP_SRC  := src/pin.c src/pool.c

SOVERSION := 0
VERSION   := $(shell sed -n 's/^#define PINFER_VERSION "\(.*\)"/\1/p' include/pinfer.h)

LIB_SRC   := $(sort $(wildcard src/*.c))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TOOL_OBJ  := $(TOOL_SRC:tools/%.c=$(B)/obj/tools/%.o)
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)

.PHONY: all lib tool tests benches demo check unit golden fuzz tsan install clean style
all: lib tool tests benches demo

lib: $(B)/libpinfer.a $(B)/libpinfer.so.$(SOVERSION)
tool: $(B)/pinfer
tests: $(TEST_BIN)
benches: $(BENCH_BIN)

$(B)/obj/%.o: src/%.c include/pinfer.h $(wildcard src/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OMP_SRC:src/%.c=$(B)/obj/%.o): CFLAGS += $(OPENMP)

$(B)/obj/tools/%.o: tools/%.c include/pinfer.h $(wildcard tools/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/libpinfer.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libpinfer.so.$(SOVERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libpinfer.so.$(SOVERSION) $(LDFLAGS) $(OPENMP) -o $@ $^ $(LDLIBS)
	ln -sf libpinfer.so.$(SOVERSION) $(B)/libpinfer.so

# The tool links the static library: one fewer file to find at start-up.
$(B)/pinfer: $(TOOL_OBJ) $(B)/libpinfer.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(B)/libpinfer.a $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libpinfer.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(OPENMP) -DPF_SOURCE_DIR='"$(CURDIR)"' -o $@ $< \
	    $(B)/libpinfer.a $(LDFLAGS) $(LDLIBS) -lcmocka

$(B)/bench/%: bench/%.c $(B)/libpinfer.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(OPENMP) -o $@ $< $(B)/libpinfer.a $(LDFLAGS) $(LDLIBS)

# The demo workload (OpenMP dense layers) that scripts/demo.sh launches.
demo: $(B)/pinfer-demo
$(B)/pinfer-demo: demo/pinfer_demo.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fopenmp -O3 -march=native -o $@ $< $(LDFLAGS) -fopenmp

check: unit golden

unit: $(TEST_BIN)
	@tests/run_unit.sh $(TEST_BIN)

golden: $(B)/pinfer
	@/usr/bin/python3 tests/run_golden.py --pinfer $(B)/pinfer

# libFuzzer targets: clang, with ASan and UBSan, linked with the library's sources.
FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fopenmp -Iinclude -Isrc \
               -D_GNU_SOURCE $(HWLOC_CFLAGS)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC) include/pinfer.h $(wildcard src/*.h)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(HWLOC_LIBS) -lpthread -lm

fuzz: $(FUZZ_BIN)

# ThreadSanitizer: clang with LLVM's libomp, whose Archer tool (libarcher.so,
# loaded automatically under TSan) tells TSan about OpenMP's synchronisation;
# tests/run_tsan.sh sets TSAN_OPTIONS=ignore_noninstrumented_modules=1 so
# that libomp's own uninstrumented internals are not reported.
TSAN_TESTS  := test_executor test_streams
TSAN_BIN    := $(TSAN_TESTS:%=build-tsan/%)
TSAN_CFLAGS := -std=c11 -g -O1 -fsanitize=thread -fopenmp -Wall -Wextra -Werror -Iinclude -Isrc \
               -D_GNU_SOURCE $(HWLOC_CFLAGS)
build-tsan/%: tests/unit/%.c $(LIB_SRC) include/pinfer.h $(wildcard src/*.h tests/unit/*.h)
	@mkdir -p $(@D)
	clang $(TSAN_CFLAGS) -DPF_SOURCE_DIR='"$(CURDIR)"' -o $@ $< $(LIB_SRC) $(HWLOC_LIBS) \
	    -lpthread -lm -lcmocka

tsan: $(TSAN_BIN)
	@tests/run_tsan.sh $(TSAN_BIN)

style:
	@tests/check_style.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/pinfer $(DESTDIR)$(PREFIX)/bin/pinfer
	install -m 644 $(B)/libpinfer.a $(DESTDIR)$(LIBDIR)/libpinfer.a
	install -m 755 $(B)/libpinfer.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libpinfer.so.$(SOVERSION)
	ln -sf libpinfer.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libpinfer.so
	install -m 644 include/pinfer.h $(DESTDIR)$(PREFIX)/include/pinfer.h
	install -m 644 docs/pinfer.1 $(DESTDIR)$(PREFIX)/share/man/man1/pinfer.1
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS@|$(HWLOC_LIBS) -lpthread -lm $(OPENMP)|' \
	    pinfer.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/pinfer.pc

clean:
	rm -rf build build-san build-fuzz build-tsan

# The Python package's extension (python/pinfer/_pinfer.c) over the static
# library, built into $(B)/python/pinfer/; python/pinfer/__init__.py looks
# there too, so that from the repository root
#     make python && PYTHONPATH=python /usr/bin/python3 -c 'import pinfer'
# works.  The library's symbols stay hidden inside the module
# (--exclude-libs); -fopenmp makes it share torch's libgomp.so.1.
# `pip install .` builds the same module with setup.py instead.  Another
# interpreter: make python PYTHON=/path/to/python3 (not taken from the environment).
PYTHON        := /usr/bin/python3
PYTHON_CONFIG := $(PYTHON)-config
PY_MODULE     := $(B)/python/pinfer/_pinfer$(shell $(PYTHON_CONFIG) --extension-suffix 2>/dev/null)
.PHONY: python
python: $(PY_MODULE)
$(PY_MODULE): python/pinfer/_pinfer.c $(B)/libpinfer.a include/pinfer.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(shell $(PYTHON_CONFIG) --includes) $(CFLAGS) $(OPENMP) -shared \
	    -Wl,--exclude-libs,ALL -o $@ $< $(B)/libpinfer.a $(LDFLAGS) $(LDLIBS)
