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
# Jansson reads the JSON of TorchServe's config.properties (`models`); only
# src/serve includes it.
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson)
JANSSON_LIBS   := $(shell pkg-config --libs jansson)
# libyaml reads pinfer tune's --space files and IPEX hypertune's YAML
# configuration; only src/tune includes it.
YAML_CFLAGS    := $(shell pkg-config --cflags yaml-0.1)
YAML_LIBS      := $(shell pkg-config --libs yaml-0.1)
MHD_CFLAGS     := $(shell pkg-config --cflags libmicrohttpd libzip)
MHD_LIBS       := $(shell pkg-config --libs libmicrohttpd libzip)

CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
# The tools see the public headers only: "built on the public API" is enforced.
TOOL_CPPFLAGS := -Iinclude -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -fPIC $(SANFLAGS) $(HWLOC_CFLAGS)
LDFLAGS  += $(SANFLAGS)
LDLIBS   += $(HWLOC_LIBS) $(JANSSON_LIBS) $(YAML_LIBS) -lpthread -lm
# Only the runtime (src/runtime: pools, pinning, executors, streams) calls
# OpenMP.  It is a library of its own, libpinfer-runtime, so that libpinfer
# and the pinfer tool link no OpenMP runtime and run no constructor.
OPENMP   ?= -fopenmp

SOVERSION := 0
VERSION   := $(shell sed -n 's/^#define PINFER_VERSION "\(.*\)"/\1/p' include/pinfer.h)

# libpinfer: the subsystems in the order they build on each other.
LIB_DIRS  := base topology plan launch proc check bench tune serve
LIB_SRC   := $(sort $(wildcard $(LIB_DIRS:%=src/%/*.c)))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
SERVE_OBJ := $(filter $(B)/obj/serve/%,$(LIB_OBJ))
TUNE_OBJ  := $(filter $(B)/obj/tune/%,$(LIB_OBJ))
# libpinfer-serve: the server (src/server), the only part that links an HTTP library.
SRV_SRC   := $(sort $(wildcard src/server/*.c))
SRV_OBJ   := $(SRV_SRC:src/%.c=$(B)/obj/%.o)
RT_SRC    := $(sort $(wildcard src/runtime/*.c))
RT_OBJ    := $(RT_SRC:src/%.c=$(B)/obj/%.o)
SRC_H     := $(wildcard src/*/*.h)
PUB_H     := include/pinfer.h include/pinfer_runtime.h include/pinfer_serve.h
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TOOL_OBJ  := $(TOOL_SRC:tools/%.c=$(B)/obj/tools/%.o)
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
# Static archives in link order, and what linking them needs.
ARCHIVES  := $(B)/libpinfer-serve.a $(B)/libpinfer-runtime.a $(B)/libpinfer.a

.PHONY: all lib tool tests benches demo check unit golden fuzz tsan install clean style
all: lib tool tests benches demo

lib: $(B)/libpinfer.a $(B)/libpinfer.so.$(SOVERSION) \
     $(B)/libpinfer-runtime.a $(B)/libpinfer-runtime.so.$(SOVERSION) \
     $(B)/libpinfer-serve.a $(B)/libpinfer-serve.so.$(SOVERSION)
tool: $(B)/pinfer
tests: $(TEST_BIN)
benches: $(BENCH_BIN)

$(B)/obj/%.o: src/%.c $(PUB_H) $(SRC_H)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(RT_OBJ): CFLAGS += $(OPENMP)
$(SERVE_OBJ): CFLAGS += $(JANSSON_CFLAGS)
$(TUNE_OBJ): CFLAGS += $(JANSSON_CFLAGS) $(YAML_CFLAGS)
$(SRV_OBJ): CFLAGS += $(JANSSON_CFLAGS) $(MHD_CFLAGS)

$(B)/obj/tools/%.o: tools/%.c $(PUB_H) $(wildcard tools/*.h)
	@mkdir -p $(@D)
	$(CC) $(TOOL_CPPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/libpinfer.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libpinfer-runtime.a: $(RT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libpinfer-serve.a: $(SRV_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libpinfer-serve.so.$(SOVERSION): $(SRV_OBJ) $(B)/libpinfer.so.$(SOVERSION)
	$(CC) -shared -Wl,-soname,libpinfer-serve.so.$(SOVERSION) -Wl,--no-undefined \
	    $(LDFLAGS) -o $@ $(SRV_OBJ) -L$(B) -lpinfer $(LDLIBS) $(MHD_LIBS)
	ln -sf libpinfer-serve.so.$(SOVERSION) $(B)/libpinfer-serve.so

$(B)/libpinfer.so.$(SOVERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libpinfer.so.$(SOVERSION) -Wl,--no-undefined $(LDFLAGS) \
	    -o $@ $^ $(LDLIBS)
	ln -sf libpinfer.so.$(SOVERSION) $(B)/libpinfer.so

$(B)/libpinfer-runtime.so.$(SOVERSION): $(RT_OBJ) $(B)/libpinfer.so.$(SOVERSION)
	$(CC) -shared -Wl,-soname,libpinfer-runtime.so.$(SOVERSION) -Wl,--no-undefined \
	    $(LDFLAGS) $(OPENMP) -o $@ $(RT_OBJ) -L$(B) -lpinfer $(LDLIBS)
	ln -sf libpinfer-runtime.so.$(SOVERSION) $(B)/libpinfer-runtime.so

# The tool links the static library: one fewer file to find at start-up.
$(B)/pinfer: $(TOOL_OBJ) $(B)/libpinfer-serve.a $(B)/libpinfer.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(B)/libpinfer-serve.a $(B)/libpinfer.a $(LDLIBS) \
	    $(MHD_LIBS)

$(B)/tests/%: tests/unit/%.c $(ARCHIVES) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(OPENMP) -DPF_SOURCE_DIR='"$(CURDIR)"' -o $@ $< \
	    $(ARCHIVES) $(LDFLAGS) $(LDLIBS) $(MHD_LIBS) -lcmocka

$(B)/bench/%: bench/%.c $(ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(OPENMP) -o $@ $< $(ARCHIVES) $(LDFLAGS) $(LDLIBS) $(MHD_LIBS)

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
               -D_GNU_SOURCE $(HWLOC_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
# The option parser is the tool's: fuzz_options links tools/options.c too.
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(PUB_H) $(SRC_H) tools/options.c tools/options.h
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -Itools -o $@ $< $(LIB_SRC) $(if $(filter fuzz_options,$*),tools/options.c) \
	    $(HWLOC_LIBS) $(JANSSON_LIBS) $(YAML_LIBS) -lpthread -lm

fuzz: $(FUZZ_BIN)

# ThreadSanitizer: clang with LLVM's libomp, whose Archer tool (libarcher.so,
# loaded automatically under TSan) tells TSan about OpenMP's synchronisation;
# tests/run_tsan.sh sets TSAN_OPTIONS=ignore_noninstrumented_modules=1 so
# that libomp's own uninstrumented internals are not reported.
TSAN_TESTS  := test_executor test_streams
TSAN_BIN    := $(TSAN_TESTS:%=build-tsan/%)
TSAN_CFLAGS := -std=c11 -g -O1 -fsanitize=thread -fopenmp -Wall -Wextra -Werror -Iinclude -Isrc \
               -D_GNU_SOURCE $(HWLOC_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
build-tsan/%: tests/unit/%.c $(LIB_SRC) $(RT_SRC) $(PUB_H) $(SRC_H) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	clang $(TSAN_CFLAGS) -DPF_SOURCE_DIR='"$(CURDIR)"' -o $@ $< $(LIB_SRC) $(RT_SRC) $(HWLOC_LIBS) \
	    $(JANSSON_LIBS) $(YAML_LIBS) -lpthread -lm -lcmocka

tsan: $(TSAN_BIN)
	@tests/run_tsan.sh $(TSAN_BIN)

style:
	@tests/check_style.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/pinfer $(DESTDIR)$(PREFIX)/bin/pinfer
	for lib in libpinfer libpinfer-runtime libpinfer-serve; do \
	    install -m 644 $(B)/$$lib.a $(DESTDIR)$(LIBDIR)/$$lib.a && \
	    install -m 755 $(B)/$$lib.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/$$lib.so.$(SOVERSION) && \
	    ln -sf $$lib.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/$$lib.so || exit 1; \
	done
	install -m 644 $(PUB_H) $(DESTDIR)$(PREFIX)/include/
	install -m 644 docs/pinfer.1 $(DESTDIR)$(PREFIX)/share/man/man1/pinfer.1
	for pc in pinfer pinfer-runtime pinfer-serve; do \
	    sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	        $$pc.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/$$pc.pc || exit 1; \
	done

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
$(PY_MODULE): python/pinfer/_pinfer.c $(B)/libpinfer-runtime.a $(B)/libpinfer.a $(PUB_H)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(shell $(PYTHON_CONFIG) --includes) $(CFLAGS) $(OPENMP) -shared \
	    -Wl,--exclude-libs,ALL -o $@ $< $(B)/libpinfer-runtime.a $(B)/libpinfer.a $(LDFLAGS) $(LDLIBS)
