#!/bin/sh
# Sourced by the in-VM scripts (run-tests.sh, run-fuzz.sh) as /sealmem/vm-lib.sh: the TAP-style
# verdict lines and the leak checks both end with.

# Tests (the TAP results of the test programs) and checks (these scripts' own verdicts:
# insmod, leaks, rmmod, kmemleak, the manifest, fuzz phases) are counted apart: the closing
# line counts tests; a failed check fails the run all the same.
passed=0 failed=0 checks_passed=0 checks_failed=0
kmemleak=/sys/kernel/debug/kmemleak

result() { # result ok|fail NAME [detail]: a check
	if [ "$1" = ok ]; then checks_passed=$((checks_passed + 1)); echo "ok - $2"
	else checks_failed=$((checks_failed + 1)); echo "not ok - $2${3:+ # $3}"; fi
}

# The line the host runner reads (qemu/run.sh).
result_line() {
	echo "SEALMEM-RESULT passed=$passed failed=$failed skipped=${skipped:-0} checks_passed=$checks_passed checks_failed=$checks_failed"
}

# Forget what kmemleak knew before the module was loaded.
kmemleak_clear() {
	[ -w $kmemleak ] && echo clear >$kmemleak
}

# settled_counter NAME: the sealmem counter NAME once it is 0, or its value after 2 s (a last
# fput may be deferred briefly to a workqueue).
settled_counter() {
	i=0
	while v=$(cat /sys/kernel/debug/sealmem/counters/$1 2>/dev/null) && [ "$v" != 0 ] && [ $i -lt 20 ]; do
		sleep 0.1; i=$((i + 1))
	done
	echo "$v"
}

# leak_checks WHEN: nothing may be left behind WHEN ("after the suite"): no file and no page,
# the module unloads, kmemleak (when the kernel has it) finds nothing.
leak_checks() {
	for c in files pages; do
		v=$(settled_counter $c)
		if [ "$v" = 0 ]; then result ok "counter $c is 0 $1"
		else result fail "counter $c is 0 $1" "it is '$v'"; fi
	done
	if rmmod sealmem; then result ok "rmmod sealmem $1"
	else result fail "rmmod sealmem $1"; fi
	if [ -w $kmemleak ]; then
		# Objects younger than ~5 s are not reported; scan twice as the kmemleak docs advise.
		sleep 6; echo scan >$kmemleak; sleep 1; echo scan >$kmemleak
		if [ -s $kmemleak ]; then cat $kmemleak; result fail "kmemleak finds no leak $1"
		else result ok "kmemleak finds no leak $1"; fi
	else
		echo "# kmemleak not available in this kernel: leak scan not run"
	fi
}
