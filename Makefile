# geostream: build, run and test.
#
#   make run     installs what is missing, builds, and runs nginx with the
#                module, the dev broker and a demo feed (Ctrl-C stops all)
#   make test    installs what is missing, builds, and runs every test: the
#                unit tests plainly and with AddressSanitizer and UBSan,
#                each fuzz target for FUZZ_QUICK_SECONDS, then the suites
#   make fuzz    runs each fuzz target for FUZZ_SECONDS (default 60)
#   make test-valgrind
#                the Test::Nginx suite with nginx under valgrind memcheck
#                (about 8 minutes; not part of make test)
#
# NGINX_SRC=/path/to/nginx-x.y.z builds the module against another nginx
# source tree (configured with --with-compat) instead of Debian's.

NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
PORT        ?= 8080

BUILD       ?= $(CURDIR)/build
MODULE      := $(BUILD)/nginx/ngx_http_geostream_module.so
DEVBROKER   := $(BUILD)/tools/geostream-devbroker
UNIT_TESTS  := $(BUILD)/unit/test_message $(BUILD)/unit/test_history \
               $(BUILD)/unit/test_route $(BUILD)/unit/test_json_writer \
               $(BUILD)/unit/test_cursor
# the same tests built with AddressSanitizer and UBSan (make test runs both)
UNIT_SAN    := $(patsubst $(BUILD)/unit/%,$(BUILD)/unit-san/%,$(UNIT_TESTS))

MODULE_SRCS := config $(wildcard ngx_geostream_module/*.[ch])
CFLAGS_TOOL := -O2 -g -Wall -Wextra -Werror -std=gnu99
CFLAGS_SAN  := -O1 -g -Wall -Wextra -Werror -std=gnu99 \
               -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer

.PHONY: all deps build module run test test-valgrind unit unit-san fuzz \
        fuzz-build fuzz-quick clean FORCE

all: build

deps:
	@tools/install-deps
	@test -d html/node_modules/leaflet || (cd html && npm ci --no-audit --no-fund)

build: $(MODULE) $(DEVBROKER) $(UNIT_TESTS)

module: $(MODULE)

# nginx configures out of tree in a copy of the source tree, so that the
# (root-owned, possibly shared) tree itself is never written to.
# remembers which source tree build/ was configured from, so that another
# NGINX_SRC configures again
$(BUILD)/nginx-src.path: FORCE
	@mkdir -p $(BUILD)
	@echo '$(NGINX_SRC)' | cmp -s - $@ || echo '$(NGINX_SRC)' > $@

$(BUILD)/nginx/Makefile: config $(BUILD)/nginx-src.path
	rm -rf $(BUILD)/nginx-src $(BUILD)/nginx
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(BUILD)/nginx-src
	cd $(BUILD)/nginx-src && ./configure --with-compat \
	    --builddir=$(BUILD)/nginx --add-dynamic-module=$(CURDIR) \
	    > $(BUILD)/configure.log 2>&1 \
	    || (tail -20 $(BUILD)/configure.log; exit 1)

$(MODULE): $(BUILD)/nginx/Makefile $(MODULE_SRCS)
	cd $(BUILD)/nginx-src && $(MAKE) -f $(BUILD)/nginx/Makefile modules

$(DEVBROKER): tools/geostream-devbroker.c
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TOOL) -o $@ $< -lrdkafka

# plain C unit tests: each links the module's plain C file(s) it tests,
# once plainly (build/unit) and once with the sanitizers (build/unit-san)
SRCS_test_message := ngx_geostream_module/ngx_geostream_message.c \
    ngx_geostream_module/ngx_geostream_scan.c \
    ngx_geostream_module/ngx_geostream_json.c \
    ngx_geostream_module/ngx_geostream_json_writer.c \
    ngx_geostream_module/ngx_geostream_json_writer.h \
    ngx_geostream_module/ngx_geostream_message.h
SRCS_test_history := ngx_geostream_module/ngx_geostream_history.c \
    ngx_geostream_module/ngx_geostream_history.h \
    ngx_geostream_module/ngx_geostream_cursor.h \
    ngx_geostream_module/ngx_geostream_filter.c \
    ngx_geostream_module/ngx_geostream_filter.h \
    ngx_geostream_module/ngx_geostream_json.c
SRCS_test_route   := ngx_geostream_module/ngx_geostream_route.c \
    ngx_geostream_module/ngx_geostream_route.h
SRCS_test_json_writer := ngx_geostream_module/ngx_geostream_json_writer.c \
    ngx_geostream_module/ngx_geostream_json_writer.h
SRCS_test_cursor  := ngx_geostream_module/ngx_geostream_cursor.c \
    ngx_geostream_module/ngx_geostream_cursor.h

.SECONDEXPANSION:

$(BUILD)/unit/%: t/unit/%.c t/unit/tap.h $$(SRCS_$$*)
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TOOL) -Ingx_geostream_module -o $@ $(filter %.c,$^) \
	    -lcjson -lm

$(BUILD)/unit-san/%: t/unit/%.c t/unit/tap.h $$(SRCS_$$*)
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_SAN) -Ingx_geostream_module -o $@ $(filter %.c,$^) \
	    -lcjson -lm

run: deps build
	PORT=$(PORT) NGINX_BIN=$(NGINX_BIN) tools/geostream-run

test: deps build unit-san fuzz-build
	NGINX_BIN=$(NGINX_BIN) t/run-suite

# t/*.t with nginx under memcheck (t/valgrind.suppress says what is not
# ours); fails on any memcheck error or definite leak in the module
test-valgrind: deps build
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	NGINX_BIN=$(NGINX_BIN) t/run-suite --valgrind

unit: $(UNIT_TESTS)
	prove --exec '' $(UNIT_TESTS)

unit-san: $(UNIT_SAN)

clean:
	rm -rf $(BUILD) t/servroot

# the producer benchmark of issue 3 (bench/producer/run; about 2 minutes)
.PHONY: bench-producer
bench-producer: build
	NGINX_BIN=$(NGINX_BIN) bench/producer/run

# the consumer fan-out benchmark of issue 4 (bench/consumer/run; about
# 6 minutes, at most about 13; builds the module of HEAD apart from build/)
.PHONY: bench-consumer
bench-consumer:
	NGINX_BIN=$(NGINX_BIN) bench/consumer/run

# fuzzing the plain C parsers (clang's libFuzzer, AddressSanitizer and
# UBSan): a target per parser, and one that holds the body's two readers
# and a strict reference to the same answers.  make test runs each for
# FUZZ_QUICK_SECONDS (fuzz-quick); make fuzz for FUZZ_SECONDS, the corpus
# kept in build/fuzz/corpus/TARGET, seeded from t/fuzz/seeds/TARGET.
FUZZ_SECONDS       ?= 60
FUZZ_QUICK_SECONDS ?= 6
FUZZ_TARGETS := $(patsubst t/fuzz/fuzz_%.c,%,$(wildcard t/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_SRCS    := ngx_geostream_module/ngx_geostream_message.c \
    ngx_geostream_module/ngx_geostream_scan.c \
    ngx_geostream_module/ngx_geostream_json.c \
    ngx_geostream_module/ngx_geostream_json_writer.c \
    ngx_geostream_module/ngx_geostream_cursor.c \
    ngx_geostream_module/ngx_geostream_history.c \
    ngx_geostream_module/ngx_geostream_filter.c
FUZZ_DEPS    := $(FUZZ_SRCS) t/fuzz/fuzz.h \
    $(wildcard ngx_geostream_module/ngx_geostream_*.h)

$(BUILD)/fuzz/fuzz_%: t/fuzz/fuzz_%.c $(FUZZ_DEPS)
	mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -Ingx_geostream_module -It/fuzz \
	    -o $@ $< $(FUZZ_SRCS) -lcjson -lm

fuzz-build: deps $(FUZZ_BINS)

# t/fuzz/run: each target in turn, a line each (runs, seconds, findings);
# a finding fails it, its input saved in build/fuzz/artifacts/
fuzz-quick: deps $(FUZZ_BINS)
	t/fuzz/run $(FUZZ_QUICK_SECONDS) $(FUZZ_TARGETS)

fuzz: deps $(FUZZ_BINS)
	t/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)
