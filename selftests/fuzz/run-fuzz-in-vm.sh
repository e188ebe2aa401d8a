#!/bin/sh
# Runs inside the debug VM (as /sealmem/run-fuzz.sh); the kernel command line sets:
#   sealmem_fuzz_ops             operations (reaching the module) of the strict phase; 0: by time
#   sealmem_fuzz_seconds         the strict phase's length, or its time cap with _ops (hitting
#                                the cap before the count fails the phase)
#   sealmem_fuzz_inject          percent of sealmem's allocations to fail in the second phase
#   sealmem_fuzz_inject_ops      operations of that phase; 0: by time
#   sealmem_fuzz_inject_seconds  its length or time cap (0: no second phase)
#   sealmem_fuzz_min_ops         the operations both phases must reach together (0: no check)
#   sealmem_fuzz_seed            0: a random seed per phase (printed)
# In the second phase the fuzzer runs with failures injected (only ENOMEM may appear) while
# the functional suites run over and over beside it under the same injection; their verdicts
# are not judged there (an injected ENOMEM fails a test by design), only what they leave:
# splats, leaks and hangs. They run as nobody, each run SIGKILLed after 6 s with everything
# it started (so kills land mid-test too).
# After it, debugfs sealmem/alloc_failures shows how many allocations failed at each of the
# module's allocation sites: every site must show at least one (else the injection missed a
# failure path), one check per site.
# Then: the counters are 0, rmmod succeeds, kmemleak finds nothing. Prints TAP-style lines,
#   SEALMEM-FUZZ ops=N other=N injected=N suite_runs=N
#   SEALMEM-RESULT passed=0 failed=0 skipped=0 checks_passed=N checks_failed=N
# (every verdict here is a check: the functional suites' verdicts are not judged)
secs=${sealmem_fuzz_seconds:-120}
nops=${sealmem_fuzz_ops:-0}
pct=${sealmem_fuzz_inject:-0}
isecs=${sealmem_fuzz_inject_seconds:-0}
inops=${sealmem_fuzz_inject_ops:-0}
minops=${sealmem_fuzz_min_ops:-0}
seed=""; [ "${sealmem_fuzz_seed:-0}" != 0 ] && seed="-s $sealmem_fuzz_seed"
fuzz=/sealmem/sealmem_fuzz
. /sealmem/vm-lib.sh
ops=0 other=0 injected=0 runs=0
# What bounds each phase: an operation count within a time cap, or a time.
bound=""; [ "$nops" -gt 0 ] && bound="-n $nops"
ibound=""; [ "$inops" -gt 0 ] && ibound="-n $inops"
phase1="fuzz ${secs}s"; [ "$nops" -gt 0 ] && phase1="fuzz to $nops operations (cap ${secs}s)"
phase2="fuzz ${isecs}s"; [ "$inops" -gt 0 ] && phase2="fuzz to $inops operations (cap ${isecs}s)"

# fuzz_phase NAME OUT ARGS...: one fuzzer run; adds its operation count to $ops.
fuzz_phase() {
	name=$1 out=$2; shift 2
	"$fuzz" "$@" >"$out" 2>&1
	fuzz_done "$name" "$out"
}

# fuzz_done NAME OUT: the verdict on a fuzzer run whose exit status is in $?.
fuzz_done() {
	frc=$?
	name=$1 out=$2
	cat "$out"
	n=$(sed -n 's/^sealmem_fuzz: \([0-9]*\) operations, .*/\1/p' "$out")
	o=$(sed -n 's/.*; \([0-9]*\) calls that never reached the module.*/\1/p' "$out")
	ops=$((ops + ${n:-0})) other=$((other + ${o:-0}))
	if [ "$frc" = 0 ] && [ -n "$n" ]; then result ok "$name: $n operations, 0 failures"
	else result fail "$name" "exit $frc; reproduce with the seed printed above"; fi
}

kmemleak_clear
if ! insmod /sealmem/sealmem.ko; then
	result fail "insmod sealmem.ko"
	result_line; exit 1
fi

if [ "$secs" -gt 0 ]; then
	fuzz_phase "$phase1" /tmp/fuzz1.out -v -t "$secs" $bound $seed
fi

if [ "$pct" -gt 0 ] && [ "$isecs" -gt 0 ]; then
	if "$fuzz" -I "$pct"; then
		rm -f /tmp/suites.stop
		(
			echo 1 >/proc/self/make-it-fail
			n=0
			while [ ! -e /tmp/suites.stop ]; do
				for t in /sealmem/tests/*; do
					# The device group reloads the module (the injection filter is on
					# its address range): it runs in the functional suite only.
					case "$t" in *sealmem_dev_test) continue ;; esac
					[ -e /tmp/suites.stop ] && break
					# As nobody, so that "kill -1" afterwards also reaps the test
					# children the kselftest harness puts in their own groups.
					su -s /bin/sh nobody -c "timeout -s KILL 6 $t >/dev/null 2>&1; kill -9 -1 2>/dev/null"
					n=$((n + 1))
				done
			done
			echo "$n" >/tmp/suites.runs
		) &
		loop=$!
		# make-it-fail: only this subshell's children (the fuzzer) get failures injected.
		( echo 1 >/proc/self/make-it-fail && exec "$fuzz" -v -t "$isecs" $ibound -i "$pct" $seed ) >/tmp/fuzz2.out 2>&1
		fuzz_done "$phase2 with ${pct}% of sealmem's allocations failing" /tmp/fuzz2.out
		touch /tmp/suites.stop
		su -s /bin/sh nobody -c "kill -9 -1" 2>/dev/null
		wait "$loop"
		runs=$(cat /tmp/suites.runs 2>/dev/null || echo 0)
		injected=$("$fuzz" -I 0 | sed -n 's/.*injected \([0-9]*\) allocation.*/\1/p')
		echo "# functional suites under injection: $runs program runs (their verdicts are not judged)"
		if [ "${injected:-0}" -gt 0 ]; then result ok "allocation failures were injected: $injected"
		else result fail "allocation failures were injected" "none: the injection did not work"; fi
		# Every allocation site of the module must have failed at least once.
		af=/sys/kernel/debug/sealmem/alloc_failures
		if [ -r "$af" ]; then
			echo "# allocation failures per site ($af):"
			sed 's/^/#   /' "$af"
			while read -r site n; do
				if [ "$n" -gt 0 ]; then result ok "injected allocation failures at site $site: $n"
				else result fail "injected allocation failures at site $site" "none: this failure path never ran"; fi
			done <"$af"
		else
			result fail "read $af"
		fi
	else
		result fail "switch on allocation-failure injection"
	fi
fi

if [ "$minops" -gt 0 ]; then
	if [ "$ops" -ge "$minops" ]; then result ok "fuzz operations reaching the module: $ops >= $minops"
	else result fail "fuzz operations reaching the module: $ops >= $minops" "only $ops"; fi
fi

leak_checks "after fuzzing"

echo "SEALMEM-FUZZ ops=$ops other=$other injected=$injected suite_runs=$runs"
result_line
[ "$checks_failed" -eq 0 ]
