#!/usr/bin/env bash
# The one driver behind the Makefile targets.
#
#   scripts/sealmem.sh demo       set up everything, boot the base kernel, run the demo
#   scripts/sealmem.sh test       set up everything, run the whole suite on the debug kernel
#   scripts/sealmem.sh quick [base|debug]
#                                 inner loop: rebuild module + tests, rerun the suite; never
#                                 installs packages or builds a kernel (fails if none cached)
#   scripts/sealmem.sh harness    prove the VM loop fails on WARNING, KASAN and a hang
#   scripts/sealmem.sh bench      run the benchmarks on the base kernel (results in build/bench)
#   scripts/sealmem.sh fuzz       run the fuzzer on the debug kernel (SEALMEM_FUZZ_SECONDS/SEED)
#   scripts/sealmem.sh setup | kernel base|debug | module base|debug | selftests
. "$(dirname "$0")/lib.sh"

setup() {
	bash "$SEALMEM_ROOT/scripts/setup-toolchain.sh"
	bash "$SEALMEM_ROOT/scripts/kernel-source.sh"
}

# kernel FLAVOUR: build (or reuse) and set KDIR.
kernel() {
	KDIR=$(bash "$SEALMEM_ROOT/scripts/build-kernel.sh" "$1" | tail -n 1)
	[ -f "$KDIR/arch/x86/boot/bzImage" ] || die "no bzImage in $KDIR"
}

# cached_kernel FLAVOUR: set KDIR to an existing build or fail (inner loop).
cached_kernel() {
	[ -f "$SEALMEM_CACHE/ksrc/VERSION" ] || die "no kernel source cached: run 'make test' once first"
	KDIR=$(kernel_dir "$1")
	[ -f "$KDIR/.sealmem-done" ] || die "no $1 kernel cached for this configuration ($KDIR): run 'make test' (debug) or 'make demo' (base) once first"
}

# module FLAVOUR: build sealmem.ko against $KDIR into build/FLAVOUR/module.
module() {
	local mo="$SEALMEM_BUILD/$1/module"
	mkdir -p "$mo"
	bash "$SEALMEM_ROOT/scripts/gen-uapi.sh" --check
	step "module-$1" make -C "$KDIR" M="$SEALMEM_ROOT" MO="$mo" LLVM="$LLVM_SUFFIX" \
		KBUILD_MODPOST_WARN= modules
	[ -f "$mo/sealmem.ko" ] || die "module build produced no sealmem.ko"
	# Warnings are errors: the module must build clean.
	if grep -E -A6 '(^|: )(warning|error)(: |\[)' "$SEALMEM_LOGS/module-$1.log" >&2; then
		die "the module build has warnings (above; full log $SEALMEM_LOGS/module-$1.log)"
	fi
	# The harness self-test module (not part of sealmem).
	mkdir -p "$SEALMEM_BUILD/$1/harness"
	step "harness-module-$1" make -C "$KDIR" M="$SEALMEM_ROOT/qemu/harness-module" \
		MO="$SEALMEM_BUILD/$1/harness" LLVM="$LLVM_SUFFIX" modules
}

# selftests: build the C and Rust test programs (static, kernel-independent).
selftests() {
	local src; src=$(ksrc_dir)
	local out="$SEALMEM_BUILD/tests"
	mkdir -p "$out"
	local c
	for c in "$SEALMEM_ROOT"/selftests/c/*.c; do
		local name; name=$(basename "$c" .c)
		step "cc-$name" gcc -static -O2 -g -Wall -Werror -D_GNU_SOURCE -pthread \
			-isystem "$src/tools/testing/selftests" -I"$SEALMEM_ROOT/include/uapi" \
			-o "$out/$name" "$c"
	done
	step cargo-selftests env CARGO_TARGET_DIR="$SEALMEM_BUILD/cargo" \
		cargo build --release --locked --target x86_64-unknown-linux-musl \
		--manifest-path "$SEALMEM_ROOT/selftests/rust/Cargo.toml"
	cp "$SEALMEM_BUILD/cargo/x86_64-unknown-linux-musl/release/sealmem-selftests" "$out/"
	# Programs that are not tests (the demo, the benchmark) go beside them, not among them.
	mkdir -p "$SEALMEM_BUILD/tools"
	step cc-sealmem_bench gcc -static -O2 -g -Wall -Werror -D_GNU_SOURCE -pthread \
		-I"$SEALMEM_ROOT/include/uapi" -o "$SEALMEM_BUILD/tools/sealmem_bench" \
		"$SEALMEM_ROOT/selftests/bench/sealmem_bench.c"
	step cc-sealmem_fuzz gcc -static -O2 -g -Wall -Werror -D_GNU_SOURCE -pthread \
		-I"$SEALMEM_ROOT/include/uapi" -o "$SEALMEM_BUILD/tools/sealmem_fuzz" \
		"$SEALMEM_ROOT/selftests/fuzz/sealmem_fuzz.c"
	cp "$SEALMEM_BUILD/cargo/x86_64-unknown-linux-musl/release/sealmem-demo" "$SEALMEM_BUILD/tools/"
}

# vm FLAVOUR MODE TIMEOUT: make the initramfs and boot it.
vm() {
	local flavour=$1 mode=$2 timeout=$3
	local dir="$SEALMEM_BUILD/$flavour"
	bash "$SEALMEM_ROOT/qemu/mkinitramfs.sh" "$dir/initramfs.cpio.gz" \
		"$dir/module/sealmem.ko" "$dir/harness/harness_splat.ko" "$SEALMEM_BUILD/tests" "$SEALMEM_BUILD/tools"
	bash "$SEALMEM_ROOT/qemu/run.sh" "$KDIR/arch/x86/boot/bzImage" "$dir/initramfs.cpio.gz" \
		"$mode" "$timeout" "$SEALMEM_LOGS/vm-$flavour-$mode.log"
}

# suite FLAVOUR WITH_HARNESS: run the test VM (and the harness self-test), then print the
# closing line "N passed, N failed[, N skipped]". Exit 1 on any failure.
suite() {
	local flavour=$1 with_harness=$2
	vm "$flavour" test 1200 || true
	local end rc timeout splats passed failed skipped
	. "$SEALMEM_LOGS/vm-$flavour-test.log.summary"
	if [ "$end" = 1 ] && [ "$timeout" = 0 ] && [ "$splats" = 0 ] && [ "$rc" = 0 -o "$failed" -gt 0 ]; then
		echo "ok - VM run ended cleanly with no kernel splat"
		passed=$((passed + 1))
	else
		echo "not ok - VM run ended cleanly with no kernel splat (end=$end rc=$rc timeout=$timeout splats=$splats; log $SEALMEM_LOGS/vm-$flavour-test.log)"
		failed=$((failed + 1))
	fi
	# The userspace crate's host tests (pure logic: ABI layouts, seal bits) and doc examples.
	local hlog="$SEALMEM_LOGS/cargo-host-tests.log"
	if env CARGO_TARGET_DIR="$SEALMEM_BUILD/cargo" cargo test --locked -p sealmem \
		--manifest-path "$SEALMEM_ROOT/selftests/rust/Cargo.toml" >"$hlog" 2>&1; then
		echo "ok - host: cargo test -p sealmem ($(grep -hoE '[0-9]+ passed' "$hlog" | awk '{s += $1} END {print s + 0}') tests and doc examples)"
		passed=$((passed + 1))
	else
		tail -n 30 "$hlog"
		echo "not ok - host: cargo test -p sealmem (log $hlog)"
		failed=$((failed + 1))
	fi
	if [ "$with_harness" = 1 ]; then
		local hout="$SEALMEM_LOGS/harness.out"
		bash "$SEALMEM_ROOT/qemu/harness-selftest.sh" "$KDIR" "$SEALMEM_BUILD/$flavour" | tee "$hout" || true
		local hp hf
		hp=$(grep -c '^ok - harness' "$hout" || true)
		hf=$(grep -c '^not ok - harness' "$hout" || true)
		[ "$((hp + hf))" -eq 3 ] || hf=$((hf + 3 - hp - hf))
		passed=$((passed + hp)); failed=$((failed + hf))
	fi
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" -eq 0 ]
}

clippy() {
	local mo="$SEALMEM_BUILD/$1/clippy"
	mkdir -p "$mo"
	step "clippy-$1" make -C "$KDIR" M="$SEALMEM_ROOT" MO="$mo" LLVM="$LLVM_SUFFIX" CLIPPY=1 modules
	grep -E '^(warning|error)' "$SEALMEM_LOGS/clippy-$1.log" && die "clippy found issues (see $SEALMEM_LOGS/clippy-$1.log)"
	msg "clippy: clean"
}

cmd=${1:-}; shift || true
case "$cmd" in
setup) setup ;;
kernel) setup; kernel "${1:-debug}" ;;
module) cached_kernel "${1:-debug}"; module "${1:-debug}" ;;
selftests) selftests ;;
clippy) cached_kernel "${1:-debug}"; clippy "${1:-debug}" ;;
demo)
	setup; kernel base; module base; selftests
	vm base demo 300 ;;
test)
	setup; kernel debug; module debug; selftests
	suite debug 1 ;;
quick)
	flavour=${1:-debug}
	cached_kernel "$flavour"; module "$flavour"; selftests
	suite "$flavour" 0 ;;
bench)
	setup; kernel base; module base; selftests
	vm base bench 3600 || die "the benchmark run failed (log: $SEALMEM_LOGS/vm-base-bench.log)"
	mkdir -p "$SEALMEM_BUILD/bench"
	tr -d '\r' <"$SEALMEM_LOGS/vm-base-bench.log" |
		sed -n '/^SEALMEM-BENCH-JSON-BEGIN/,/^SEALMEM-BENCH-JSON-END/p' | sed '1d;$d' >"$SEALMEM_BUILD/bench/results.json"
	[ -s "$SEALMEM_BUILD/bench/results.json" ] || die "no benchmark results in the VM log"
	msg "results: $SEALMEM_BUILD/bench/results.json (table above; log $SEALMEM_LOGS/vm-base-bench.log)" ;;
fuzz)
	# SEALMEM_FUZZ_SECONDS (default 120), SEALMEM_FUZZ_SEED (default: random) and
	# SEALMEM_FUZZ_INJECT (percent of sealmem's allocations to fail, default 0) pass through.
	setup; kernel debug; module debug; selftests
	SEALMEM_VM_APPEND="sealmem_fuzz_seconds=${SEALMEM_FUZZ_SECONDS:-120} sealmem_fuzz_seed=${SEALMEM_FUZZ_SEED:-0} sealmem_fuzz_inject=${SEALMEM_FUZZ_INJECT:-0} ${SEALMEM_VM_APPEND:-}" \
		vm debug fuzz $(( ${SEALMEM_FUZZ_SECONDS:-120} + 600 )) ;;
harness)
	flavour=${1:-debug}
	cached_kernel "$flavour"; module "$flavour"; selftests
	bash "$SEALMEM_ROOT/qemu/harness-selftest.sh" "$KDIR" "$SEALMEM_BUILD/$flavour" ;;
*) die "usage: $0 demo|test|quick [base|debug]|harness|setup|kernel F|module F|selftests" ;;
esac
