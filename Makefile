# ModelMine: PGXS build of the `modelmine` extension, plus the client library the other programs share
# (common/Makefile), the worker (worker/Makefile), the CLI (cli/Makefile), the gateway (api/Makefile) and
# the notifier (notify/Makefile).
EXTENSION   = modelmine
# The current version: sql/modelmine.sql is its install script.  Released versions keep their frozen
# install scripts (sql/modelmine--1.0.sql) and every release ships sql/modelmine--A--B.sql (see README).
EXTVERSION  = 1.1
MODULE_big  = modelmine
OBJS        = $(patsubst %.c,%.o,$(wildcard extension/*.c))
DATA_built  = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA        = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN = $(DATA_built)

REGRESS      = $(sort $(patsubst regress/sql/%.sql,%,$(wildcard regress/sql/*.sql)))
REGRESS_OPTS = --inputdir=regress --outputdir=regress/out --load-extension=pgcrypto
ISOLATION    = $(sort $(patsubst regress/specs/%.spec,%,$(wildcard regress/specs/*.spec)))
ISOLATION_OPTS = --inputdir=regress --outputdir=regress/out-isolation --load-extension=pgcrypto

# SHA-256 for the ledger (OpenSSL comes with libpq-dev's libssl-dev); Jansson for the workers' config
# validator, compiled in from worker/train (extension/trainconfig.c, configcheck.c).
SHLIB_LINK  = -lcrypto $(shell pkg-config --libs jansson)
PG_CPPFLAGS = -Iinclude $(shell pkg-config --cflags jansson) -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers: every object depends on the shared ones.
$(OBJS): extension/modelmine.h include/modelmine/protocol.h
extension/trainconfig.o: $(wildcard worker/train/*.c worker/train/*.h)
extension/configcheck.o: worker/train/mmtrain.h

# The unversioned install script is the source of truth for the current version; the versioned file is
# built from it.
sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql
	cp $< $@

all: worker cli api notify
.PHONY: common worker worker-check cli api notify sanitize clean-common clean-worker clean-cli \
	clean-api clean-notify
common:
	$(MAKE) -C common
worker: common
	$(MAKE) -C worker
worker-check: common
	$(MAKE) -C worker check
cli: common
	$(MAKE) -C cli
api: common
	$(MAKE) -C api
notify: common
	$(MAKE) -C notify
# The same four programs built with AddressSanitizer and UBSan (common/sanitize.mk): binaries
# worker/modelmine-worker-asan, cli/modelmine-asan, api/modelmine-api-asan, notify/modelmine-notify-asan
# beside the normal ones; scripts/test-sanitize.sh runs the integration tests against them.
sanitize:
	$(MAKE) -C common SANITIZE=1
	$(MAKE) -C worker SANITIZE=1
	$(MAKE) -C cli SANITIZE=1
	$(MAKE) -C api SANITIZE=1
	$(MAKE) -C notify SANITIZE=1
clean: clean-common clean-worker clean-cli clean-api clean-notify clean-fuzz

# ---- the fuzzers (scripts/fuzz.sh runs them; docs/TESTING.md): libFuzzer, ASan, UBSan, clang ----
# `make fuzz` builds every target: the worker's, the gateway's, the CLI's and the extension's
# token parser, which is jwt.c compiled out of the backend: server headers, PostgreSQL's frontend
# libpgcommon/libpgport, and palloc/ereport shims in the target (extension/tests/fuzz_jwt.c).
FUZZ_CC ?= clang
JWT_FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wall \
	-Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers \
	-Wno-ignored-attributes -Iextension -Iinclude -I$(shell $(PG_CONFIG) --includedir-server)
.PHONY: fuzz fuzz-worker fuzz-api fuzz-cli clean-fuzz
fuzz: fuzz-worker fuzz-api fuzz-cli extension/tests/fuzz_jwt
fuzz-worker: common
	$(MAKE) -C worker fuzz
fuzz-api: common
	$(MAKE) -C api fuzz-build
fuzz-cli: common
	$(MAKE) -C cli fuzz
extension/tests/fuzz_jwt: extension/tests/fuzz_jwt.c extension/jwt.c extension/modelmine.h
	$(FUZZ_CC) $(JWT_FUZZ_FLAGS) -o $@ extension/tests/fuzz_jwt.c extension/jwt.c \
		-L$(shell $(PG_CONFIG) --pkglibdir) -Wl,--wrap=palloc,--wrap=repalloc,--wrap=pfree \
		-lpgcommon -lpgport -lcrypto
clean-fuzz:
	rm -f extension/tests/fuzz_jwt
clean-common:
	$(MAKE) -C common clean
clean-worker:
	$(MAKE) -C worker clean
clean-cli:
	$(MAKE) -C cli clean
clean-api:
	$(MAKE) -C api clean
clean-notify:
	$(MAKE) -C notify clean
