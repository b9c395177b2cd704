# common/sanitize.mk — included by the Makefiles of common/ and of every program (worker, cli, api,
# notify). `make SANITIZE=1` (what the top Makefile's `make sanitize` runs) builds the same sources
# with AddressSanitizer and UBSan into objects *.san.o, libraries *-asan.a and binaries *-asan,
# beside the normal build and independent of it, at the same -O level (the trainers are numeric
# loops: -O1 would make the timing-bound tests much slower). Only `all` is meant for it (not check).
#   $(O)     object suffix: o, or san.o
#   $(ASAN)  suffix of libraries and binaries: empty, or -asan
ifeq ($(SANITIZE),1)
CFLAGS += -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
O      := san.o
ASAN   := -asan
else
O      := o
ASAN   :=
endif
