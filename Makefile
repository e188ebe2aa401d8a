# sealmem — top-level targets. Everything runs through scripts/sealmem.sh; logs go to
# build/logs/, expensive outputs (kernel source and builds) to ~/.cache/sealmem/
# (override with SEALMEM_CACHE=...).
#
#   make demo        set up everything (apt, rustup, kernel) and run the demo on the base kernel
#   make test        set up everything and run the whole test suite on the debug kernel
#   make bench       set up everything and run the benchmarks on the base kernel
#   make profile     sample where the benchmark cases spend kernel time (SEALMEM_PROFILE=case,...)
#   make fuzz        the fuzzer on the debug kernel (SEALMEM_FUZZ_OPS, SEALMEM_FUZZ_SECONDS cap, SEALMEM_FUZZ_SEED)
#
# Inner loop (no package installs, no kernel build; needs a cached kernel from the above):
#   make quick       rebuild module + tests, rerun the suite on the cached debug kernel
#   make quick-base  the same on the base kernel (faster boot, fewer checkers)
#   make module      rebuild sealmem.ko only (debug kernel)
#   make harness     prove the VM loop fails on a WARNING, KASAN, a hang, not ok, a crash, a leak
#
#   make uapi        regenerate include/uapi/rust/sealmem_uapi.rs from the C header
#   make uapi-check  fail if that file is stale
#   make man         render the man page docs/sealmem.4 (check it against docs/api.md: make man-check)
#   make clippy      build the module with CLIPPY=1
#   make layers      check the module's layering: no import cycle, no unsafe in logic files
#   make ffi-check   check rust/ffi.rs's declarations against rust/sealmem_helpers.h
#   make rustfmt     format the module's Rust code (the kernel tree's rustfmt settings)
#   make rustfmt-check fail if the module's Rust code is not rustfmt-clean
#   make clean       remove build/ (keeps the kernel cache)
#   make help        this list (the default target)

SHELL := /bin/bash
RUN := bash scripts/sealmem.sh

# The default target: what each target does, one line each (from the comment above).
help:
	@sed -n 's/^#   make \([a-z-]*\) *\(.*\)/\1\t\2/p' $(firstword $(MAKEFILE_LIST)) | \
		awk -F'\t' '{ printf "  make %-14s %s\n", $$1, $$2 }'

bench:
	$(RUN) bench

fuzz:
	$(RUN) fuzz

profile:
	$(RUN) profile

.PHONY: help demo test bench profile fuzz quick quick-base module harness setup kernel uapi uapi-check man man-check clippy layers ffi-check rustfmt rustfmt-check clean

demo:
	$(RUN) demo

test:
	$(RUN) test

quick:
	$(RUN) quick debug

quick-base:
	$(RUN) quick base

module:
	$(RUN) module debug

harness:
	$(RUN) harness debug

setup:
	$(RUN) setup

kernel:
	$(RUN) kernel debug

uapi:
	bash scripts/gen-uapi.sh

uapi-check:
	bash scripts/gen-uapi.sh --check

man:
	MANWIDTH=80 man --warnings -l docs/sealmem.4

man-check:
	bash scripts/check-man.sh

clippy:
	$(RUN) clippy debug

layers:
	bash scripts/check-layers.sh

ffi-check:
	bash scripts/check-ffi.sh

rustfmt:
	$(RUN) rustfmt

rustfmt-check:
	$(RUN) rustfmt-check

clean:
	rm -rf build
