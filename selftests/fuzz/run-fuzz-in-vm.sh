#!/bin/sh
# Runs inside the debug VM (as /sealmem/run-fuzz.sh); the kernel command line sets:
#   sealmem_fuzz_seconds         fuzzing without injection (strict: only documented errnos)
#   sealmem_fuzz_inject          percent of sealmem's allocations to fail in the second phase
#   sealmem_fuzz_inject_seconds  length of that phase (0: no second phase)
#   sealmem_fuzz_seed            0: a random seed per phase (printed)
# In the second phase the fuzzer runs with failures injected (only ENOMEM may appear) while
# the functional suites run over and over beside it under the same injection; their verdicts
# are not judged there (an injected ENOMEM fails a test by design), only what they leave:
# splats, leaks and hangs. They run as nobody, each run SIGKILLed after 6 s with everything
# it started (so kills land mid-test too).
# Then: the counters are 0, rmmod succeeds, kmemleak finds nothing. Prints TAP-style lines,
#   SEALMEM-FUZZ ops=N injected=N suite_runs=N
#   SEALMEM-RESULT passed=0 failed=0 skipped=0 checks_passed=N checks_failed=N
# (every verdict here is a check: the functional suites' verdicts are not judged)
secs=${sealmem_fuzz_seconds:-120}
pct=${sealmem_fuzz_inject:-0}
isecs=${sealmem_fuzz_inject_seconds:-0}
seed=""; [ "${sealmem_fuzz_seed:-0}" != 0 ] && seed="-s $sealmem_fuzz_seed"
fuzz=/sealmem/sealmem_fuzz
. /sealmem/vm-lib.sh
ops=0 injected=0 runs=0

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
	ops=$((ops + ${n:-0}))
	if [ "$frc" = 0 ] && [ -n "$n" ]; then result ok "$name: $n operations, 0 failures"
	else result fail "$name" "exit $frc; reproduce with the seed printed above"; fi
}

kmemleak_clear
if ! insmod /sealmem/sealmem.ko; then
	result fail "insmod sealmem.ko"
	result_line; exit 1
fi

if [ "$secs" -gt 0 ]; then
	fuzz_phase "fuzz ${secs}s" /tmp/fuzz1.out -v -t "$secs" $seed
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
		( echo 1 >/proc/self/make-it-fail && exec "$fuzz" -v -t "$isecs" -i "$pct" $seed ) >/tmp/fuzz2.out 2>&1
		fuzz_done "fuzz ${isecs}s with ${pct}% of sealmem's allocations failing" /tmp/fuzz2.out
		touch /tmp/suites.stop
		su -s /bin/sh nobody -c "kill -9 -1" 2>/dev/null
		wait "$loop"
		runs=$(cat /tmp/suites.runs 2>/dev/null || echo 0)
		injected=$("$fuzz" -I 0 | sed -n 's/.*injected \([0-9]*\) allocation.*/\1/p')
		echo "# functional suites under injection: $runs program runs (their verdicts are not judged)"
		if [ "${injected:-0}" -gt 0 ]; then result ok "allocation failures were injected: $injected"
		else result fail "allocation failures were injected" "none: the injection did not work"; fi
	else
		result fail "switch on allocation-failure injection"
	fi
fi

leak_checks "after fuzzing"

echo "SEALMEM-FUZZ ops=$ops injected=$injected suite_runs=$runs"
result_line
[ "$checks_failed" -eq 0 ]
