#!/bin/sh
# The demo (README's first command), run inside the VM on the base kernel.
say() { printf '\n== %s\n' "$*"; }
say "Loading sealmem.ko"
insmod /sealmem/sealmem.ko || exit 1
grep sealmem /proc/modules
say "The device node: a misc device any user may open"
ls -l /dev/sealmem
say "Each open() of /dev/sealmem is a new, empty sealmem file (fd 3 and fd 4 here)"
exec 3<>/dev/sealmem 4<>/dev/sealmem
echo "--- /proc/self/fdinfo/3"; cat /proc/$$/fdinfo/3
echo "--- /proc/self/fdinfo/4"; cat /proc/$$/fdinfo/4
say "The API handshake (SEALMEM_IOC_API) and the module's global counters"
/sealmem/tests/sealmem-selftests --handshake
for c in /sys/kernel/debug/sealmem/counters/*; do printf '%-14s %s\n' "$(basename "$c")" "$(cat "$c")"; done
say "rmmod is refused while a file is open..."
rmmod sealmem 2>&1 || true
exec 3>&- 4>&-
say "...and succeeds once every file is closed"
rmmod sealmem && echo "sealmem unloaded"
