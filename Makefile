# geostream: build, run and test.
#
#   make run     installs what is missing, builds, and runs nginx with the
#                module, the dev broker and a demo feed (Ctrl-C stops all)
#   make test    installs what is missing, builds, and runs every test
#   make test-valgrind
#                the Test::Nginx suite with nginx under valgrind memcheck
#                (about 6 minutes; not part of make test)
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
               $(BUILD)/unit/test_route

MODULE_SRCS := config $(wildcard ngx_geostream_module/*.[ch])
CFLAGS_TOOL := -O2 -g -Wall -Wextra -Werror -std=gnu99

.PHONY: all deps build module run test test-valgrind unit fuzz clean FORCE

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

# plain C unit tests: each links the module's plain C file(s) it tests
$(BUILD)/unit/test_message: t/unit/test_message.c t/unit/tap.h \
    ngx_geostream_module/ngx_geostream_message.c \
    ngx_geostream_module/ngx_geostream_scan.c \
    ngx_geostream_module/ngx_geostream_message.h
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TOOL) -Ingx_geostream_module -o $@ $(filter %.c,$^) \
	    -lcjson -lm

$(BUILD)/unit/test_history: t/unit/test_history.c t/unit/tap.h \
    ngx_geostream_module/ngx_geostream_history.c \
    ngx_geostream_module/ngx_geostream_history.h \
    ngx_geostream_module/ngx_geostream_filter.c \
    ngx_geostream_module/ngx_geostream_filter.h
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TOOL) -Ingx_geostream_module -o $@ $(filter %.c,$^) -lm

$(BUILD)/unit/test_route: t/unit/test_route.c t/unit/tap.h \
    ngx_geostream_module/ngx_geostream_route.c \
    ngx_geostream_module/ngx_geostream_route.h
	mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TOOL) -Ingx_geostream_module -o $@ $(filter %.c,$^)

run: deps build
	PORT=$(PORT) NGINX_BIN=$(NGINX_BIN) tools/geostream-run

test: deps build
	NGINX_BIN=$(NGINX_BIN) t/run-suite

# t/*.t with nginx under memcheck (t/valgrind.suppress says what is not
# ours); fails on any memcheck error or definite leak in the module
test-valgrind: deps build
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	NGINX_BIN=$(NGINX_BIN) t/run-suite --valgrind

unit: $(UNIT_TESTS)
	prove --exec '' $(UNIT_TESTS)

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

# fuzzing the plain C parsers (clang's libFuzzer and AddressSanitizer);
# FUZZ_SECONDS per run, the corpus kept in build/fuzz/corpus
FUZZ_SECONDS ?= 60

$(BUILD)/fuzz/fuzz_message: t/fuzz/fuzz_message.c \
    ngx_geostream_module/ngx_geostream_message.c \
    ngx_geostream_module/ngx_geostream_scan.c \
    ngx_geostream_module/ngx_geostream_history.c \
    ngx_geostream_module/ngx_geostream_filter.c
	@command -v clang >/dev/null || apt-get install -y -qq clang
	mkdir -p $(BUILD)/fuzz/corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined \
	    -Ingx_geostream_module -o $@ $(filter %.c,$^) -lcjson -lm

fuzz: $(BUILD)/fuzz/fuzz_message
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus \
	    t/fuzz/seeds
