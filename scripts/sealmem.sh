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
#   scripts/sealmem.sh profile    profile benchmark cases (SEALMEM_PROFILE=case,...) on the base kernel
#   scripts/sealmem.sh run 'CMD'  run a shell command in the base VM after insmod (experiments)
#   scripts/sealmem.sh fuzz       run the fuzzer on the debug kernel (SEALMEM_FUZZ_SECONDS/OPS/SEED)
#   scripts/sealmem.sh rustfmt | rustfmt-check   format / check the module's Rust code
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
	# The debug flavour's module has the test-only race-widening delays (rust/knobs.rs);
	# the base flavour's (demo, benchmarks) has none.
	local knobs=n
	[ "$1" = debug ] && knobs=y
	step "module-$1" make -C "$KDIR" M="$SEALMEM_ROOT" MO="$mo" LLVM="$LLVM_SUFFIX" \
		SEALMEM_DEBUG_KNOBS=$knobs KBUILD_MODPOST_WARN= modules
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

# selftests: build the C and Rust test programs (static, kernel-independent), side by side.
selftests() {
	local src; src=$(ksrc_dir)
	local out="$SEALMEM_BUILD/tests" tools="$SEALMEM_BUILD/tools"
	local cc=(gcc -static -O2 -g -Wall -Werror -D_GNU_SOURCE -pthread -I"$SEALMEM_ROOT/include/uapi")
	# A fresh test directory (the VM runs every program in it: a deleted or renamed test's old
	# binary must not run), and the manifest the VM checks what ran against: every test
	# program of the source tree.
	rm -rf "$out"
	mkdir -p "$out" "$tools"
	{
		for c in "$SEALMEM_ROOT"/selftests/c/sealmem_*_test.c; do basename "$c" .c; done
		echo sealmem-selftests
		# The crate's examples are test programs too (TAP): crate-example-NAME.
		for e in "$SEALMEM_ROOT"/tools/sealmem/examples/*.rs; do echo "crate-example-$(basename "$e" .rs)"; done
	} | sort >"$tools/tests.manifest"
	local pids=()
	# The C tests with kselftest's own lib.mk (selftests/c/Makefile), as a kernel tree would
	# build them in tools/testing/selftests/sealmem.
	step cc-selftests make -C "$SEALMEM_ROOT/selftests/c" KSRC="$src" OUTPUT="$out" -j2 &
	pids+=($!)
	# Programs that are not tests (the demo, the benchmark, the fuzzer) go beside them.
	step cc-sealmem_bench "${cc[@]}" -o "$tools/sealmem_bench" -I"$SEALMEM_ROOT/selftests/c" "$SEALMEM_ROOT/tools/bench/sealmem_bench.c" "$SEALMEM_ROOT/selftests/c/sealmem_lib.c" &
	pids+=($!)
	step cc-sealmem_fuzz "${cc[@]}" -I"$SEALMEM_ROOT/selftests/c" -o "$tools/sealmem_fuzz" \
		"$SEALMEM_ROOT/tools/fuzz/sealmem_fuzz.c" "$SEALMEM_ROOT/selftests/c/sealmem_lib.c" &
	pids+=($!)
	# Two cargo workspaces (the Rust selftests; the crate and demo in tools/), one target
	# directory: cargo serialises the two builds on its lock.
	step cargo-selftests env CARGO_TARGET_DIR="$SEALMEM_BUILD/cargo" \
		cargo build --release --locked --target x86_64-unknown-linux-musl \
		--manifest-path "$SEALMEM_ROOT/selftests/rust/Cargo.toml" &
	pids+=($!)
	# The crate's examples with every feature (the tokio one needs it), the demo and the
	# prefetch benchmark.
	step cargo-tools env CARGO_TARGET_DIR="$SEALMEM_BUILD/cargo" \
		cargo build --release --locked --target x86_64-unknown-linux-musl \
		--manifest-path "$SEALMEM_ROOT/tools/Cargo.toml" --workspace --bins --examples --features sealmem/tokio &
	pids+=($!)
	local p rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ "$rc" -eq 0 ] || die "building the test programs failed (logs above)"
	cp "$SEALMEM_BUILD/cargo/x86_64-unknown-linux-musl/release/sealmem-selftests" "$out/"
	cp "$SEALMEM_BUILD/cargo/x86_64-unknown-linux-musl/release/sealmem-demo" "$tools/"
	cp "$SEALMEM_BUILD/cargo/x86_64-unknown-linux-musl/release/sealmem-prefetch-bench" "$tools/"
	local e
	for e in "$SEALMEM_ROOT"/tools/sealmem/examples/*.rs; do
		e=$(basename "$e" .rs)
		cp "$SEALMEM_BUILD/cargo/x86_64-unknown-linux-musl/release/examples/$e" "$out/crate-example-$e"
	done
}

# initramfs FLAVOUR: pack the module, the tests and the tools for the VM.
initramfs() {
	local dir="$SEALMEM_BUILD/$1"
	bash "$SEALMEM_ROOT/qemu/mkinitramfs.sh" "$dir/initramfs.cpio.gz" \
		"$dir/module/sealmem.ko" "$dir/harness/harness_splat.ko" "$SEALMEM_BUILD/tests" "$SEALMEM_BUILD/tools"
}

# boot FLAVOUR MODE TIMEOUT: boot the packed initramfs (log: build/logs/vm-FLAVOUR-MODE.log).
boot() {
	bash "$SEALMEM_ROOT/qemu/run.sh" "$KDIR/arch/x86/boot/bzImage" "$SEALMEM_BUILD/$1/initramfs.cpio.gz" \
		"$2" "$3" "$SEALMEM_LOGS/vm-$1-$2.log"
}

# vm FLAVOUR MODE TIMEOUT: pack and boot.
vm() {
	initramfs "$1"
	boot "$@"
}

# The benchmark VM's CPU model: QEMU's "max" without ERMS/FSRM. With them the kernel copies
# user data with `rep movsb`, which TCG emulates a byte per step: every kernel copy (ours,
# UFFDIO_COPY, pwrite) then ran 3x slower than with `rep movsq`, and glibc's memcpy switched
# to `rep movsb` at 64 KiB. Without them both sides copy the way most real x86 CPUs make
# fast. The tests keep the ERMS/FSRM copies. LA57 (off in the test VMs, see qemu/run.sh)
# stays on here, as in the documented runs: the base kernel has no KASAN to trip over it.
# SEALMEM_QEMU_CPU overrides it.
bench_cpu() {
	export SEALMEM_QEMU_CPU=${SEALMEM_QEMU_CPU:-max,erms=off,fsrm=off}
	msg "benchmark VM CPU: $SEALMEM_QEMU_CPU"
}

# fuzz_vm SECONDS INJECT_PERCENT INJECT_SECONDS SEED [OPS INJECT_OPS MIN_OPS]: boot the
# fuzzing VM (debug kernel, initramfs already packed); selftests/fuzz/run-fuzz-in-vm.sh says
# what runs in it. With OPS (INJECT_OPS) a phase runs until that many operations reached the
# module, SECONDS (INJECT_SECONDS) being its time cap; MIN_OPS: both together must reach it.
fuzz_vm() {
	local isecs=$3
	[ "$2" = 0 ] && isecs=0
	SEALMEM_VM_APPEND="sealmem_fuzz_seconds=$1 sealmem_fuzz_inject=$2 sealmem_fuzz_inject_seconds=$isecs sealmem_fuzz_seed=$4 sealmem_fuzz_ops=${5:-0} sealmem_fuzz_inject_ops=${6:-0} sealmem_fuzz_min_ops=${7:-0} ${SEALMEM_VM_APPEND:-}" \
		boot debug fuzz $(($1 + isecs + 600))
}

# What make test fuzzes, by operation count (operations that reach the module; the rate
# depends on the machine and on what shares it): a strict phase, then a phase with 10% of
# sealmem's allocations failing while the functional suites run beside the fuzzer. With
# CI=true 900,000 + 150,000 operations, and the run asserts 1,000,000 together; otherwise
# 150,000 + 50,000. Each phase has a time cap (CI: 600 s + 400 s; otherwise 300 s + 200 s)
# that fails the phase if it comes first. SEALMEM_FUZZ_OPS / SEALMEM_FUZZ_INJECT_OPS /
# SEALMEM_FUZZ_SECONDS / SEALMEM_FUZZ_INJECT_SECONDS / SEALMEM_FUZZ_MIN_OPS override them.
if [ "${CI:-}" = true ]; then
	CI_FUZZ_OPS=${SEALMEM_FUZZ_OPS:-900000} CI_FUZZ_INJECT_OPS=${SEALMEM_FUZZ_INJECT_OPS:-150000}
	CI_FUZZ_SECONDS=${SEALMEM_FUZZ_SECONDS:-600} CI_FUZZ_INJECT_SECONDS=${SEALMEM_FUZZ_INJECT_SECONDS:-400}
	CI_FUZZ_MIN_OPS=${SEALMEM_FUZZ_MIN_OPS:-1000000}
else
	CI_FUZZ_OPS=${SEALMEM_FUZZ_OPS:-150000} CI_FUZZ_INJECT_OPS=${SEALMEM_FUZZ_INJECT_OPS:-50000}
	CI_FUZZ_SECONDS=${SEALMEM_FUZZ_SECONDS:-300} CI_FUZZ_INJECT_SECONDS=${SEALMEM_FUZZ_INJECT_SECONDS:-200}
	CI_FUZZ_MIN_OPS=${SEALMEM_FUZZ_MIN_OPS:-$((CI_FUZZ_OPS + CI_FUZZ_INJECT_OPS))}
fi
CI_FUZZ_INJECT=10
# How long the lazy-fill stress test (selftests/c/sealmem_stress_test.c) runs in the test VM:
# 2 minutes with CI=true, 20 s otherwise; SEALMEM_STRESS_SECONDS overrides it. It travels on
# the kernel command line (sealmem_stress_seconds=) like the fuzzer's parameters.
if [ "${CI:-}" = true ]; then STRESS_SECONDS=${SEALMEM_STRESS_SECONDS:-120}; else STRESS_SECONDS=${SEALMEM_STRESS_SECONDS:-20}; fi

# suite FLAVOUR FULL: run the test VM; with FULL=1 also the fuzzing VM beside it and the
# harness self-test. Counts tests (the test programs' TAP results and the host cargo tests)
# apart from checks (VM verdicts, leaks, rmmod, kmemleak, the manifest, the source checks,
# harness boots, fuzz phases), prints both, then the closing line "N passed, N failed[, N skipped]" of the tests,
# whose failed count includes failed checks. Exit 1 on any failure.
suite() {
	local flavour=$1 with_fuzz=$2
	local end rc timeout splats passed failed skipped checks_passed checks_failed fuzz_pid=""
	local t_passed t_failed t_skipped c_passed=0 c_failed=0
	initramfs "$flavour"
	if [ "$with_fuzz" = 1 ]; then
		# The fuzzing VM runs beside the test VM and the harness boots (its length is
		# fixed; theirs is work): its console goes to its log, its verdict comes last.
		msg "fuzz: $CI_FUZZ_OPS + $CI_FUZZ_INJECT_OPS operations (caps ${CI_FUZZ_SECONDS}s + ${CI_FUZZ_INJECT_SECONDS}s; at least $CI_FUZZ_MIN_OPS together), the second with injected allocation failures, in a second VM (log $SEALMEM_LOGS/vm-debug-fuzz.log)"
		fuzz_vm "$CI_FUZZ_SECONDS" "$CI_FUZZ_INJECT" "$CI_FUZZ_INJECT_SECONDS" 0 "$CI_FUZZ_OPS" "$CI_FUZZ_INJECT_OPS" "$CI_FUZZ_MIN_OPS" >/dev/null 2>"$SEALMEM_LOGS/vm-debug-fuzz.runner" &
		fuzz_pid=$!
	fi
	SEALMEM_VM_APPEND="sealmem_stress_seconds=$STRESS_SECONDS ${SEALMEM_VM_APPEND:-}" boot "$flavour" test 1200 || true
	. "$SEALMEM_LOGS/vm-$flavour-test.log.summary"
	t_passed=$passed t_failed=$failed t_skipped=$skipped
	c_passed=$((c_passed + checks_passed)); c_failed=$((c_failed + checks_failed))
	vm_verdict "VM run ended cleanly with no kernel splat" "$SEALMEM_LOGS/vm-$flavour-test.log"
	# Source checks on the host: the module's layering, formatting and FFI declarations, and
	# the man page (the generated uapi file is checked before every module build).
	source_check "module layering: no import cycle, no unsafe in logic files (scripts/check-layers.sh)" \
		layers bash "$SEALMEM_ROOT/scripts/check-layers.sh"
	source_check "module is rustfmt-clean (make rustfmt-check)" rustfmt-check rustfmt_module check
	source_check "rust/ffi.rs matches rust/sealmem_helpers.h (scripts/check-ffi.sh)" \
		ffi-check bash "$SEALMEM_ROOT/scripts/check-ffi.sh"
	source_check "man page: docs/sealmem.4 renders and agrees with docs/api.md and the header (scripts/check-man.sh)" \
		man-check bash "$SEALMEM_ROOT/scripts/check-man.sh"
	# The userspace crate's host tests (logic that needs no module: ABI layouts, errors,
	# requests from a pipe, SCM_RIGHTS, the recording format, the async stream) and doc
	# examples, without and with the tokio feature: their real counts. Then clippy on both
	# (checks).
	local hlog hn feat
	for feat in "" futures-core; do
		hlog="$SEALMEM_LOGS/cargo-host-tests${feat:+-$feat}.log"
		if env CARGO_TARGET_DIR="$SEALMEM_BUILD/cargo" cargo test --locked -p sealmem ${feat:+--features $feat} \
			--manifest-path "$SEALMEM_ROOT/tools/Cargo.toml" >"$hlog" 2>&1; then
			hn=$(grep -hoE '[0-9]+ passed' "$hlog" | awk '{s += $1} END {print s + 0}')
			echo "ok - host: cargo test -p sealmem${feat:+ --features $feat (tokio)} ($hn tests and doc examples)"
			t_passed=$((t_passed + hn))
		else
			tail -n 30 "$hlog"
			echo "not ok - host: cargo test -p sealmem${feat:+ --features $feat} (log $hlog)"
			t_failed=$((t_failed + 1))
		fi
		hlog="$SEALMEM_LOGS/cargo-host-clippy${feat:+-$feat}.log"
		if env CARGO_TARGET_DIR="$SEALMEM_BUILD/cargo" cargo clippy --locked -p sealmem --all-targets ${feat:+--features $feat} \
			--manifest-path "$SEALMEM_ROOT/tools/Cargo.toml" -- -D warnings >"$hlog" 2>&1; then
			echo "ok - host: cargo clippy -p sealmem${feat:+ --features $feat (tokio)}"
			c_passed=$((c_passed + 1))
		else
			grep -E -A8 '^(warning|error)' "$hlog" | head -n 40
			echo "not ok - host: cargo clippy -p sealmem${feat:+ --features $feat} (log $hlog)"
			c_failed=$((c_failed + 1))
		fi
	done
	if [ "$with_fuzz" = 1 ]; then
		local hout="$SEALMEM_LOGS/harness.out"
		bash "$SEALMEM_ROOT/qemu/harness-selftest.sh" "$KDIR" "$SEALMEM_BUILD/$flavour" | tee "$hout" || true
		local hp hf
		hp=$(grep -c '^ok - harness' "$hout" || true)
		hf=$(grep -c '^not ok - harness' "$hout" || true)
		[ "$((hp + hf))" -eq 6 ] || hf=$((hf + 6 - hp - hf))
		c_passed=$((c_passed + hp)); c_failed=$((c_failed + hf))
		wait "$fuzz_pid" || true
		local flog="$SEALMEM_LOGS/vm-debug-fuzz.log"
		tr -d '\r' <"$flog" | grep -a -E '^(ok|not ok) - |^sealmem_fuzz: (seed|[0-9]+ operations|[0-9]+ operations/s|injected)|^# (functional|allocation|  )' || true
		. "$flog.summary"
		c_passed=$((c_passed + checks_passed)); c_failed=$((c_failed + checks_failed + failed))
		vm_verdict "fuzz VM run ended cleanly with no kernel splat" "$flog"
		local line
		line=$(tr -d '\r' <"$flog" | grep -a -m1 '^SEALMEM-FUZZ ' || echo "SEALMEM-FUZZ ops=0 other=0 injected=0 suite_runs=0")
		local ops=0 other=0 injected=0 suite_runs=0
		eval "local ${line#SEALMEM-FUZZ }"
		msg "fuzz: $ops operations reaching the module ($other other calls), $injected injected allocation failures, $suite_runs functional-suite runs under injection"
	fi
	echo "# checks (VM verdicts, leaks, rmmod, kmemleak, manifest, source checks, harness, fuzz phases): $c_passed ok, $c_failed not ok"
	local all_failed=$((t_failed + c_failed))
	if [ "$t_skipped" -gt 0 ]; then
		echo "$t_passed passed, $all_failed failed, $t_skipped skipped"
	else
		echo "$t_passed passed, $all_failed failed"
	fi
	[ "$all_failed" -eq 0 ]
}

# source_check NAME LOG CMD...: one check line from a host command's exit status (its output
# in build/logs/LOG.log); counts into $c_passed / $c_failed.
source_check() {
	local name=$1 log="$SEALMEM_LOGS/$2.log"
	shift 2
	if ("$@") >"$log" 2>&1; then
		echo "ok - $name"
		c_passed=$((c_passed + 1))
	else
		tail -n 20 "$log"
		echo "not ok - $name (log $log)"
		c_failed=$((c_failed + 1))
	fi
}

# vm_verdict NAME LOG: one check line from a VM run's summary (end marker, rc, timeout,
# splats); counts into $c_passed / $c_failed. A run whose tests or checks failed has said so
# already (its rc is then non-zero).
vm_verdict() {
	local end rc timeout splats passed failed skipped checks_passed checks_failed
	. "$2.summary"
	if [ "$end" = 1 ] && [ "$timeout" = 0 ] && [ "$splats" = 0 ] && [ "$rc" = 0 -o "$((failed + checks_failed))" -gt 0 ]; then
		echo "ok - $1"
		c_passed=$((c_passed + 1))
	else
		echo "not ok - $1 (end=$end rc=$rc timeout=$timeout splats=$splats; log $2)"
		[ "$splats" = 0 ] || head -n 20 "$2.splats"
		c_failed=$((c_failed + 1))
	fi
}

clippy() {
	local mo="$SEALMEM_BUILD/$1/clippy"
	mkdir -p "$mo"
	# Lints the debug flavour's build, test-only knobs included (rust/knobs.rs).
	local knobs=n
	[ "$1" = debug ] && knobs=y
	step "clippy-$1" make -C "$KDIR" M="$SEALMEM_ROOT" MO="$mo" LLVM="$LLVM_SUFFIX" CLIPPY=1 \
		SEALMEM_DEBUG_KNOBS=$knobs modules
	grep -E '^(warning|error)' "$SEALMEM_LOGS/clippy-$1.log" && die "clippy found issues (see $SEALMEM_LOGS/clippy-$1.log)"
	msg "clippy: clean"
}

# rustfmt_module [check]: format the module's Rust code (rust/*.rs) with the kernel tree's
# rustfmt settings (rust/.rustfmt.toml is a copy of its .rustfmt.toml), or with "check" only
# report what would change (exit 1), as the kernel's `make rustfmtcheck` does. The generated
# uapi file is skipped (`#[rustfmt::skip]` in rust/uapi.rs): its generator formats it.
rustfmt_module() {
	if [ "${1:-}" = check ]; then
		rustfmt --check "$SEALMEM_ROOT"/rust/*.rs || die "the module's Rust code is not rustfmt-clean: run 'make rustfmt'"
		msg "rustfmt: clean"
	else
		rustfmt "$SEALMEM_ROOT"/rust/*.rs
	fi
}

cmd=${1:-}; shift || true
case "$cmd" in
setup) setup ;;
kernel) setup; kernel "${1:-debug}" ;;
module) cached_kernel "${1:-debug}"; module "${1:-debug}" ;;
selftests) selftests ;;
clippy) cached_kernel "${1:-debug}"; clippy "${1:-debug}" ;;
rustfmt) rustfmt_module ;;
rustfmt-check) rustfmt_module check ;;
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
	bench_cpu
	# SEALMEM_BENCH_ONLY=WORD,...: only what the words name: "prefetch" the crate's prefetch
	# benchmark, any other word the C cases whose id starts with it (e.g. filltouch,sendfile;
	# ids: sealmem_bench -P list). Unset: everything.
	only=${SEALMEM_BENCH_ONLY:-}
	conly=$(echo ",$only," | sed 's/,prefetch,/,/g; s/^,*//; s/,*$//')
	SEALMEM_VM_APPEND="${only:+sealmem_bench_only=$only} ${SEALMEM_VM_APPEND:-}" \
		vm base bench 3600 || die "the benchmark run failed (log: $SEALMEM_LOGS/vm-base-bench.log)"
	mkdir -p "$SEALMEM_BUILD/bench"
	if [ -z "$only" ] || [ "$conly" != "$only" ]; then
		tr -d '\r' <"$SEALMEM_LOGS/vm-base-bench.log" | grep -a '^SEALMEM-PREFETCH-BENCH ' >"$SEALMEM_BUILD/bench/prefetch.txt" ||
			die "no prefetch benchmark results in the VM log"
		msg "prefetch: $SEALMEM_BUILD/bench/prefetch.txt"
	fi
	if [ -z "$only" ] || [ -n "$conly" ]; then
		tr -d '\r' <"$SEALMEM_LOGS/vm-base-bench.log" |
			sed -n '/^SEALMEM-BENCH-JSON-BEGIN/,/^SEALMEM-BENCH-JSON-END/p' | sed '1d;$d' >"$SEALMEM_BUILD/bench/results.json"
		[ -s "$SEALMEM_BUILD/bench/results.json" ] || die "no benchmark results in the VM log"
		msg "results: $SEALMEM_BUILD/bench/results.json (table above; log $SEALMEM_LOGS/vm-base-bench.log)"
	fi ;;
profile)
	# Where the time of the benchmark cases goes: `make profile` (SEALMEM_PROFILE=case,...;
	# default: the round-trip and resident fault-in cases; "all" for every case; SEALMEM_PROFILE_FOCUS=
	# fn,... also breaks down the time under those functions). Base kernel.
	setup; kernel base; module base; selftests
	bench_cpu
	SEALMEM_VM_APPEND="sealmem_bench_profile=${SEALMEM_PROFILE:-roundtrip-sealmem,roundtrip-uffd-shmem,roundtrip-uffd-anon,resident-sealmem-seq,resident-memfd-seq,resident-sealmem-random,resident-memfd-random} ${SEALMEM_PROFILE_FOCUS:+sealmem_bench_focus=$SEALMEM_PROFILE_FOCUS} ${SEALMEM_VM_APPEND:-}" \
		vm base profile 3600 || die "the profiling run failed (log: $SEALMEM_LOGS/vm-base-profile.log)"
	mkdir -p "$SEALMEM_BUILD/bench"
	tr -d '\r' <"$SEALMEM_LOGS/vm-base-profile.log" | sed -n '/^PROFILE /,/^$/p' >"$SEALMEM_BUILD/bench/profile.txt"
	[ -s "$SEALMEM_BUILD/bench/profile.txt" ] || die "no profile in the VM log"
	msg "profile: $SEALMEM_BUILD/bench/profile.txt" ;;
fuzz)
	# SEALMEM_FUZZ_SECONDS (default 120), SEALMEM_FUZZ_SEED (default: random),
	# SEALMEM_FUZZ_INJECT (percent of sealmem's allocations to fail, default 0) and
	# SEALMEM_FUZZ_INJECT_SECONDS (length of the injected phase, default 60) pass through;
	# SEALMEM_FUZZ_OPS / SEALMEM_FUZZ_INJECT_OPS run a phase to that many operations instead
	# (the seconds are then its cap) and SEALMEM_FUZZ_MIN_OPS asserts a total.
	setup; kernel debug; module debug; selftests
	initramfs debug
	fuzz_vm "${SEALMEM_FUZZ_SECONDS:-120}" "${SEALMEM_FUZZ_INJECT:-0}" "${SEALMEM_FUZZ_INJECT_SECONDS:-60}" \
		"${SEALMEM_FUZZ_SEED:-0}" "${SEALMEM_FUZZ_OPS:-0}" "${SEALMEM_FUZZ_INJECT_OPS:-0}" "${SEALMEM_FUZZ_MIN_OPS:-0}" ;;
run)
	# An experiment on the cached base kernel: scripts/sealmem.sh run 'shell command' runs it
	# in the VM after insmod (programs copied into build/tools/ are in /sealmem/). The
	# command travels base64-encoded on the kernel command line, so it may hold any quote.
	cached_kernel base; module base; selftests
	SEALMEM_VM_APPEND="sealmem_run=$(printf '%s' "$*" | base64 -w0) ${SEALMEM_VM_APPEND:-}" vm base run 1200 ;;
harness)
	flavour=${1:-debug}
	cached_kernel "$flavour"; module "$flavour"; selftests; initramfs "$flavour"
	bash "$SEALMEM_ROOT/qemu/harness-selftest.sh" "$KDIR" "$SEALMEM_BUILD/$flavour" ;;
*) die "usage: $0 demo|test|quick [base|debug]|harness|setup|kernel F|module F|selftests|rustfmt|rustfmt-check" ;;
esac
