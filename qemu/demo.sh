#!/bin/sh
# The demo (README's first command), run inside the VM on the base kernel.
say() { printf '\n== %s\n' "$*"; }
say "Loading sealmem.ko: /dev/sealmem is a misc device any user may open"
insmod /sealmem/sealmem.ko || exit 1
ls -l /dev/sealmem
/sealmem/tests/sealmem-selftests --handshake

say "The image the producer will serve (first bytes of pages 0 and 1023)"
head -c 64 /sealmem/image.bin; echo
dd if=/sealmem/image.bin bs=4096 skip=1023 count=1 2>/dev/null | head -c 64; echo

/sealmem/sealmem-demo /sealmem/image.bin
rc=$?

say "Everything is released: no file, no page left; the module unloads"
for c in files pages; do printf '   debugfs %-6s: %s\n' "$c" "$(cat /sys/kernel/debug/sealmem/counters/$c)"; done
rmmod sealmem && echo "   sealmem unloaded"
exit $rc
