#!/usr/bin/env bash
# Proves the VM loop can fail: each case boots the VM with a planted fault and PASSES only if
# the runner reported the run as FAILED for the expected reason.
#
#   qemu/harness-selftest.sh KDIR FLAVOUR_BUILD_DIR   (with FLAVOUR_BUILD_DIR/initramfs.cpio.gz packed)
# Prints TAP-style lines and "harness: N passed, N failed"; exit 1 on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1 bdir=$2
logs=${SEALMEM_LOGS:-$root/build/logs}
h_passed=0 h_failed=0

check() { # check NAME MODE TIMEOUT EXPECT(splat|kasan|timeout|notok|crash|leak)
	local name=$1 mode=$2 tmo=$3 expect=$4 log="$logs/vm-harness-$2.log"
	if bash "$root/qemu/run.sh" "$kdir/arch/x86/boot/bzImage" "$bdir/initramfs.cpio.gz" \
		"$mode" "$tmo" "$log" >/dev/null 2>"$log.runner"; then
		echo "not ok - harness: $name (the runner PASSED a run that must fail)"
		h_failed=$((h_failed + 1)); return
	fi
	local splats timeout
	splats=$(sed -n 's/^splats=//p' "$log.summary")
	timeout=$(sed -n 's/^timeout=//p' "$log.summary")
	local good=0
	case "$expect" in
	splat) [ "$splats" -gt 0 ] && grep -q 'WARNING:.*harness_splat' "$log.splats" && good=1 ;;
	kasan) [ "$splats" -gt 0 ] && grep -q 'KASAN' "$log.splats" && good=1 ;;
	timeout) [ "$timeout" -eq 1 ] && good=1 ;;
	# The runner's own lines in the console log say why the run failed.
	notok) grep -aq '^not ok 2 planted.fails' "$log.clean" && grep -aq '^SEALMEM-RESULT passed=1 failed=1 ' "$log.clean" && good=1 ;;
	crash) grep -aqE '^not ok - planted_crash exited [0-9]+ without reporting a failed test' "$log.clean" &&
		grep -aq '^not ok - planted_crash ran 1 tests of its plan of 2' "$log.clean" && good=1 ;;
	leak) grep -aq '^not ok - planted_leak leaves no file and no page behind .*files=1.* the module was reloaded and nothing reported its gauges' "$log.clean" &&
		grep -aq '^not ok - rmmod sealmem after the suite' "$log.clean" && good=1 ;;
	esac
	if [ "$good" -eq 1 ]; then
		echo "ok - harness: $name"; h_passed=$((h_passed + 1))
	else
		echo "not ok - harness: $name (failed, but not for the expected reason; see $log.runner)"
		h_failed=$((h_failed + 1))
	fi
}

# The boots run three at a time (the hung one mostly sleeps); each writes its verdict line.
out=$(mktemp -d)
check "a WARNING in the VM fails the run" harness-warn 300 splat >"$out/1" &
check "a KASAN report in the VM fails the run" harness-kasan 300 kasan >"$out/2" &
check "a hung VM is killed by the timeout and fails the run" harness-hang 45 timeout >"$out/3" &
wait
check "a test program reporting a failed test fails the run" harness-notok 300 notok >"$out/4" &
check "a test program crashing half-way fails the run" harness-crash 300 crash >"$out/5" &
check "a test program leaving a file behind fails the run (gauges, rmmod), and so does its reload that reports no gauges" harness-leak 300 leak >"$out/6" &
wait
cat "$out"/1 "$out"/2 "$out"/3 "$out"/4 "$out"/5 "$out"/6
h_passed=$(cat "$out"/* | grep -c '^ok - ')
h_failed=$((6 - h_passed))
rm -rf "$out"
echo "harness: $h_passed passed, $h_failed failed"
[ "$h_failed" -eq 0 ]
