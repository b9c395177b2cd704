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

SHLIB_LINK  = -lcrypto   # SHA-256 for the ledger (OpenSSL comes with libpq-dev's libssl-dev)
PG_CPPFLAGS = -Iinclude -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers: every object depends on the shared ones.
$(OBJS): extension/modelmine.h include/modelmine/protocol.h

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
clean: clean-common clean-worker clean-cli clean-api clean-notify
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
