#!/bin/sh
# Runs inside the test VM (as /sealmem/run-tests.sh): loads sealmem, runs every test program
# in /sealmem/tests (C kselftest binaries and the Rust test binary, all TAP), then checks that
# the module unloads and kmemleak finds nothing. Prints the TAP of each program and a final
#   SEALMEM-RESULT passed=N failed=N skipped=N checks_passed=N checks_failed=N
# that the host runner reads: tests (the programs' TAP results) and this script's own checks,
# counted apart. Skips are reported as skips, never counted as passes; on the debug build
# (the one with the test knobs) nothing may skip: each skip is also a failed check.
export SEALMEM_KO=/sealmem/sealmem.ko
PER_TEST_TIMEOUT=${PER_TEST_TIMEOUT:-600}
# sealmem_stress_seconds= (kernel command line, set by scripts/sealmem.sh): the run time of
# the lazy-fill stress test, which reads SEALMEM_STRESS_SECONDS.
[ -n "${sealmem_stress_seconds:-}" ] && export SEALMEM_STRESS_SECONDS="$sealmem_stress_seconds"
. /sealmem/vm-lib.sh
skipped=0
kmemleak_clear

if insmod "$SEALMEM_KO"; then result ok "insmod sealmem.ko"
else result fail "insmod sealmem.ko"; result_line; exit 1; fi
# The debug build (make test, make quick) runs every test; only a base build may skip some.
debug_build=0
[ -d /sys/kernel/debug/sealmem/debug ] && debug_build=1

# sealmem_tests=NAME[,NAME...] (kernel command line; the host: SEALMEM_VM_APPEND=
# "sealmem_tests=sealmem_fill_test" make quick): run only these programs, to iterate on one.
# Such a run can never pass for a full one: its manifest check fails (below).
subset=$(echo "${sealmem_tests:-}" | tr ',' ' ')
# The debugfs directory of the loaded module: a reload makes a new one (a new inode).
module_ino() { stat -c %i /sys/kernel/debug/sealmem/counters/files 2>/dev/null || echo none; }

ran=""
# sealmem_tests_dir: the harness self-test's planted programs instead of the tests.
for t in "${sealmem_tests_dir:-/sealmem/tests}"/*; do
	name=$(basename "$t")
	if [ -n "$subset" ]; then
		case " $subset " in *" $name "*) ;; *) continue ;; esac
	fi
	out=/tmp/$name.tap
	echo "# ---- $name"
	ino=$(module_ino)
	timeout "$PER_TEST_TIMEOUT" "$t" >"$out" 2>&1
	trc=$?
	cat "$out"
	p=$(grep -c '^ok ' "$out" | tr -d ' ')
	s=$(grep '^ok ' "$out" | grep -c '# SKIP' | tr -d ' ')
	f=$(grep -c '^not ok ' "$out" | tr -d ' ')
	passed=$((passed + p - s)); skipped=$((skipped + s)); failed=$((failed + f))
	if [ "$s" -gt 0 ] && [ "$debug_build" = 1 ]; then
		result fail "$name skipped $s test(s) that must run on the debug build"
	fi
	# Nothing may outlive a test group: no file, no page. The gauges live in the module, so
	# a program that reloads it (dev) resets them: what it left before the reload is seen
	# only through the lines sm_reload() prints just before unloading
	#   # SEALMEM-GAUGES before unload: files=N pages=N
	# (sealmem_lib.h); a reload without such a line fails this check.
	leak=""
	for c in files pages; do
		v=$(settled_counter $c)
		[ "$v" = 0 ] || leak="$leak $c=$v"
	done
	gauges=$(grep -a '^# SEALMEM-GAUGES before unload: ' "$out" | sed 's/^# SEALMEM-GAUGES before unload: //')
	n_unloads=0
	if [ -n "$gauges" ]; then
		n_unloads=$(echo "$gauges" | wc -l | tr -d ' ')
		bad=$(echo "$gauges" | grep -v '^files=0 pages=0$' | tr '\n' ';')
		[ -z "$bad" ] || leak="$leak before an unload: $bad"
	fi
	if [ "$(module_ino)" != "$ino" ] && [ "$n_unloads" = 0 ]; then
		leak="$leak the module was reloaded and nothing reported its gauges before the unload"
	fi
	[ "$n_unloads" = 0 ] || echo "# $name: gauges checked before $n_unloads unload(s) too"
	if [ -z "$leak" ]; then result ok "$name leaves no file and no page behind"
	else result fail "$name leaves no file and no page behind" "counters:$leak"; fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		result fail "$name ran no test" "exit $trc"
	elif [ "$trc" -ne 0 ] && [ "$f" -eq 0 ]; then
		result fail "$name exited $trc without reporting a failed test (crash or timeout?)"
	fi
	# The TAP plan: a program that stops half-way (or reports more than it planned) fails.
	plan=$(grep -m1 -E '^1\.\.[0-9]+' "$out" | cut -d. -f3)
	if [ -z "$plan" ] || [ "$plan" -ne $((p + f)) ]; then
		result fail "$name ran $((p + f)) tests of its plan of ${plan:-none}"
	fi
	ran="$ran $name"
done

# The programs that ran are exactly the manifest (the test programs of the source tree).
if [ -f /sealmem/tests.manifest ]; then
	missing="" extra=""
	for m in $(cat /sealmem/tests.manifest); do
		case " $ran " in *" $m "*) ;; *) missing="$missing $m" ;; esac
	done
	for r in $ran; do
		grep -qx "$r" /sealmem/tests.manifest || extra="$extra $r"
	done
	if [ -z "$missing$extra" ]; then
		result ok "the programs that ran are the manifest's $(wc -l </sealmem/tests.manifest | tr -d ' ')"
	else
		result fail "the programs that ran are the manifest's" "missing:${missing:- none}; not in it:${extra:- none}${subset:+; a subset run (sealmem_tests=$sealmem_tests) is never a full one}"
	fi
else
	result fail "the programs that ran are the manifest's" "no /sealmem/tests.manifest"
fi

leak_checks "after the suite"

result_line
[ "$failed" -eq 0 ] && [ "$checks_failed" -eq 0 ]
