#!/usr/bin/env bash
# Boot a kernel + initramfs under QEMU (TCG: KVM does not work on these machines), save the
# serial log, and decide pass/fail from BOTH the in-VM end marker and a scan of the log for
# kernel splats. A splat fails the run even if every test passed.
#
#   qemu/run.sh BZIMAGE INITRAMFS MODE TIMEOUT_S LOG
#   (SEALMEM_VM_APPEND adds kernel command-line words, e.g. sealmem_bench_mib=16)
#   (SEALMEM_QEMU_CPU sets the -cpu model; default "max,la57=off")
#   (SEALMEM_QEMU_MEM sets -m for MODE bench only; default 3G there, 2G in every other mode)
#
# Writes LOG (the serial console) and LOG.summary (key=value lines read by the callers):
#   end=0|1 rc=N timeout=0|1 splats=N passed=N failed=N skipped=N checks_passed=N checks_failed=N
# Exit status: 0 when the VM ended with rc=0, no timeout and no splat; 1 otherwise.
set -uo pipefail
kernel=$1 initrd=$2 mode=$3 tmo=$4 log=$5
summary="$log.summary"
mkdir -p "$(dirname "$log")"
rm -f "$log" "$summary"

echo "[sealmem] vm: booting $(basename "$kernel") mode=$mode (timeout ${tmo}s, serial log $log)" >&2
timed_out=0
start=$SECONDS
# The benchmark VM gets 3 GiB: its huge cases keep a 1 GiB file (2 MiB folios) beside the
# rest; the tests keep 2 GiB.
mem=2G
[ "$mode" = bench ] && mem=${SEALMEM_QEMU_MEM:-3G}
# -no-reboot + panic=-1: a panic ends QEMU at once. The serial console goes to the log and,
# as it arrives, to our stdout.
#
# la57=off: with 5-level paging, the debug kernel sometimes reports a KASAN wild-memory-access
# in an interrupt taken during identify_cpu(). Our reading: while identify_cpu() rebuilds the
# boot CPU's feature bits the interrupt sees LA57 cleared, so KASAN (whose shadow bounds follow
# pgtable_l5_enabled()) reports the 5-level direct-map address of an irq_desc lock as a
# wild-memory-access: a splat at ~4 ms of boot, before the module is loaded, in about 1 debug
# boot in 20 (0 in 32 without LA57). The benchmark VM keeps LA57 (see bench_cpu).
timeout --foreground -k 5 "$tmo" qemu-system-x86_64 \
	-accel tcg -cpu "${SEALMEM_QEMU_CPU:-max,la57=off}" -smp 2 -m "$mem" -nographic -no-reboot \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=7 log_buf_len=4M sealmem_mode=$mode ${SEALMEM_VM_APPEND:-}" \
	</dev/null 2>&1 | tee "$log"
qrc=${PIPESTATUS[0]}
[ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ] && timed_out=1
echo "[sealmem] vm: QEMU exited ($qrc) after $((SECONDS - start)) s" >&2

tr -d '\r' <"$log" >"$log.clean"
end=0; rc=-1
if line=$(grep -a -m1 '^SEALMEM-END rc=' "$log.clean"); then
	end=1; rc=${line#SEALMEM-END rc=}
fi
passed=0 failed=0 skipped=0 checks_passed=0 checks_failed=0
if line=$(grep -a '^SEALMEM-RESULT ' "$log.clean" | tail -n 1); then
	for kv in ${line#SEALMEM-RESULT }; do
		case "$kv" in passed=*|failed=*|skipped=*|checks_passed=*|checks_failed=*) eval "${kv%%=*}=${kv#*=}" ;; esac
	done
fi

# Kernel splats. The patterns are anchored on what the kernel prints at the start of each
# report; printk timestamps ("[   1.234] ") may precede them.
splat_re='(BUG: |WARNING: |Oops|general protection fault|Kernel panic|KASAN|UBSAN|KFENCE|possible circular locking|possible recursive locking|inconsistent lock state|lock held when returning|suspicious RCU usage|rcu: INFO: .*stall|rcu_.* detected stall|self-detected stall|soft lockup|hard LOCKUP|blocked for more than|unreferenced object|kmemleak: .*suspected memory leak|list_add corruption|list_del corruption|refcount_t: |Unable to handle kernel)'
grep -a -n -E "$splat_re" "$log.clean" >"$log.splats" || true
splats=$(wc -l <"$log.splats")

cat >"$summary" <<SUM
end=$end
rc=$rc
timeout=$timed_out
splats=$splats
passed=$passed
failed=$failed
skipped=$skipped
checks_passed=$checks_passed
checks_failed=$checks_failed
SUM

ok=1
if [ "$timed_out" -eq 1 ]; then
	echo "[sealmem] vm: FAIL: the VM did not finish within ${tmo}s (hung?) — killed" >&2; ok=0
elif [ "$end" -eq 0 ]; then
	echo "[sealmem] vm: FAIL: no end marker in the serial log (crash or panic?)" >&2; ok=0
elif [ "$rc" != 0 ]; then
	echo "[sealmem] vm: FAIL: in-VM run exited with rc=$rc" >&2; ok=0
fi
if [ "$splats" -gt 0 ]; then
	echo "[sealmem] vm: FAIL: $splats kernel splat line(s) in the serial log:" >&2
	head -n 20 "$log.splats" >&2
	ok=0
fi
[ "$ok" -eq 1 ]
