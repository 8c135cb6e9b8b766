# repctl - multi-master PostgreSQL replication and two-way file sync.
#
#   make                 build ./repctl
#   make check           install build/test dependencies (Debian), build, and run
#                        every unit and integration test under ASan+UBSan
#   make check-unit      unit tests only (plain build)
#   make check-asan      unit + integration tests under ASan+UBSan
#   make check-docker    the Docker deployment end to end: both images, the
#                        primary's and two clients' compose stacks (as root;
#                        ../shared/tools/docker/setup.sh provides the engine)
#   make check-fresh     `make demo` + `make check-unit` in a fresh Debian 12 container
#   make soak            the randomized replication property test with many seeds
#                        (SOAK_SEEDS=N, default 50; under ASan+UBSan)
#   make demo            quick start: two local nodes replicating (see README)
#   make demo-stop       stop what `make demo` started
#   make install PREFIX=/usr/local DESTDIR=   (SYSTEMDDIR= for no systemd unit)
#   make format-check    clang-format dry run
#   make layers          the includes follow the layers (docs/ARCHITECTURE.md)

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
STATEDIR   ?= /var/lib/repctl
# systemd unit etc/repctl.service; empty: not installed (the Docker image)
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR    ?=

CC      ?= cc
OPT     ?= -O2 -g
PKGS     = libpq libconfig libssh libzstd libcrypto libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lpq -lconfig -lssh -lzstd -lcrypto -lmicrohttpd) -lm
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers
DEFS     = -D_GNU_SOURCE -DSYSCONFDIR='"$(SYSCONFDIR)"' -DSTATEDIR='"$(STATEDIR)"'
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) $(DEFS) -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) $(LDLIBS)

BUILD ?= build
SAN   ?=
ifeq ($(SAN),1)
BUILD = build-asan
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

SRCS    := $(sort $(wildcard src/*/*.c))
OBJS    := $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS)) $(BUILD)/sql_embed.o
MAINOBJ := $(BUILD)/main.o
SQL     := $(sort $(wildcard sql/*.sql))
# The client kit's compose file and agent entrypoint, compiled in like the SQL
# (src/cli/cmd_kit.c: `repctl client-kit` is the same from a checkout, an
# install or the image).
KIT_EMBED := docker/client/docker-compose.yml docker/agent-entrypoint.sh
OBJS    += $(BUILD)/kit_embed.o
# The web console's pages, style sheet and script (src/daemon/console.c), compiled
# in the same way: no file is read at run time, nothing is fetched to build.
WEB_EMBED := $(sort $(wildcard web/*.html web/*.css web/*.js))
OBJS    += $(BUILD)/web_embed.o

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

ifeq ($(SAN),1)
all: $(BUILD)/repctl
else
all: repctl
repctl: $(BUILD)/repctl
	cp $< $@.tmp && mv -f $@.tmp $@
endif

$(BUILD)/repctl: $(OBJS) $(MAINOBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Rebuild when the compiled-in paths or flags change (make install PREFIX=...).
$(BUILD)/flags.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS)' > $@

$(BUILD)/sql_embed.c: $(SQL) scripts/sql_embed.sh
	@mkdir -p $(BUILD)
	sh scripts/sql_embed.sh $@ $(SQL)

$(BUILD)/sql_embed.o: $(BUILD)/sql_embed.c include/sql_embed.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/kit_embed.c: $(KIT_EMBED) scripts/sql_embed.sh
	@mkdir -p $(BUILD)
	sh scripts/sql_embed.sh $@.sql $(KIT_EMBED)
	sed -e 's/sql_files\[\]/kit_files[]/' -e 's/from the sql directory/from docker\//' $@.sql >$@.tmp
	rm -f $@.sql && mv -f $@.tmp $@

$(BUILD)/kit_embed.o: $(BUILD)/kit_embed.c include/sql_embed.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/web_embed.c: $(WEB_EMBED) scripts/sql_embed.sh
	@mkdir -p $(BUILD)
	sh scripts/sql_embed.sh $@.sql $(WEB_EMBED)
	sed -e 's/sql_files\[\]/web_files[]/' -e 's/from the sql directory/from web\//' $@.sql >$@.tmp
	rm -f $@.sql && mv -f $@.tmp $@

$(BUILD)/web_embed.o: $(BUILD)/web_embed.c include/sql_embed.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJS) $(LDLIBS_ALL) -lcmocka

unit-bins: $(UNIT_BINS)

deps:
	sh scripts/deps.sh

check-unit: all unit-bins
	bash tests/run unit $(UNIT_BINS)

check-integration: all
	bash tests/run integration

# Everything under AddressSanitizer and UBSan: the unit tests, and the
# integration tests driving the sanitized binary.
check-asan:
	$(MAKE) SAN=1 all unit-bins
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  bash tests/run unit $(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BINS))
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  REPCTL_BIN=$(CURDIR)/build-asan/repctl bash tests/run integration

# The README's test command: dependencies, the layering of the includes, plain
# build, everything under sanitizers.
check: deps
	$(MAKE) layers
	$(MAKE) all unit-bins
	$(MAKE) check-asan

# Every #include follows the layers of docs/ARCHITECTURE.md (scripts/layers.sh).
layers:
	bash scripts/layers.sh

# The Docker deployment end to end (tests/docker/check.sh): both images built
# from the checkout, the primary's and the clients' compose stacks on this host,
# the README's steps inside the containers; removes everything it created.
check-docker:
	bash tests/docker/check.sh

# The README's two commands on a fresh Debian 12 container (tests/docker/fresh.sh):
# `make demo` the first time, then `make check-unit`.
check-fresh:
	bash tests/docker/fresh.sh

.PHONY: check-docker check-fresh

# The randomized property test (tests/integration/t_repl_property.sh) with
# many more seeds than `make check` gives it.
soak: deps
	$(MAKE) SAN=1 all
	REPCTL_BIN=$(CURDIR)/build-asan/repctl bash scripts/soak.sh

# deps first, then a make that reads pkg-config's flags of what deps installed
demo: deps
	$(MAKE) all
	bash scripts/demo.sh start

demo-stop:
	bash scripts/demo.sh stop

# Benchmark against Bucardo, rsync and unison (docs/BENCHMARKS.md); reports, never fails on figures.
bench: deps
	$(MAKE) all
	sh bench/deps.sh || echo "bench: peer tools missing; the results will say which"
	bash bench/run.sh --full

bench-quick: deps
	$(MAKE) all
	sh bench/deps.sh || echo "bench: peer tools missing; the results will say which"
	bash bench/run.sh --quick

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SYSCONFDIR)
	install -m 0755 repctl $(DESTDIR)$(BINDIR)/repctl
	install -m 0644 docs/repctl.1 $(DESTDIR)$(MANDIR)/man1/repctl.1
	install -m 0644 etc/repctl.conf.example $(DESTDIR)$(SYSCONFDIR)/repctl.conf.example
	install -m 0644 etc/repctl-minimal.conf $(DESTDIR)$(SYSCONFDIR)/repctl-minimal.conf
	@# the unit names the installed binary and the state directory
	@if [ -n "$(SYSTEMDDIR)" ]; then \
	  echo "install etc/repctl.service -> $(DESTDIR)$(SYSTEMDDIR)/repctl.service" && \
	  install -d $(DESTDIR)$(SYSTEMDDIR) && \
	  sed -e 's|/usr/local/bin/repctl|$(BINDIR)/repctl|g' \
	      -e 's|/var/lib/repctl|$(STATEDIR)|g' etc/repctl.service >$(DESTDIR)$(SYSTEMDDIR)/repctl.service.tmp && \
	  chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/repctl.service.tmp && \
	  mv -f $(DESTDIR)$(SYSTEMDDIR)/repctl.service.tmp $(DESTDIR)$(SYSTEMDDIR)/repctl.service; \
	fi

format-check:
	clang-format --dry-run --Werror src/*.c src/*/*.c include/*.h tests/unit/*.c

clean:
	rm -rf build build-asan repctl

FORCE:

.PHONY: FORCE all deps check check-unit check-integration check-asan soak demo demo-stop install \
	format-check clean unit-bins layers
