#!/usr/bin/env bash
# Build the test initramfs: static busybox, /init, sealmem.ko, the harness module, the test
# programs and the in-VM scripts.
#
#   qemu/mkinitramfs.sh OUT.cpio.gz SEALMEM_KO HARNESS_KO TESTS_DIR TOOLS_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1 ko=$2 harness_ko=$3 tests=$4 tools=$5
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,etc,sealmem/tests,root}
# mktemp -d makes a 0700 directory; it becomes "/" in the VM, which every user must traverse.
chmod 755 "$stage"; chmod 1777 "$stage/tmp"
cp /bin/busybox "$stage/bin/busybox"
# Debian's `busybox --list` includes busybox itself: skip it, or the link loops.
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] && continue
	ln -sf busybox "$stage/bin/$applet"
done
cp "$root/qemu/init" "$stage/init"
cp "$root/selftests/run-in-vm.sh" "$stage/sealmem/run-tests.sh"
cp "$root/selftests/vm-lib.sh" "$stage/sealmem/vm-lib.sh"
cp "$root/selftests/fuzz/run-fuzz-in-vm.sh" "$stage/sealmem/run-fuzz.sh"
cp "$root/qemu/demo.sh" "$stage/sealmem/demo.sh"
cp "$ko" "$stage/sealmem/sealmem.ko"
cp "$harness_ko" "$stage/sealmem/harness_splat.ko"
cp "$tests"/* "$stage/sealmem/tests/"
cp "$tools"/* "$stage/sealmem/"
# The harness self-test's planted test programs (qemu/harness-selftest.sh), one per directory.
for p in "$root"/qemu/harness-planted/*.sh; do
	d="$stage/sealmem/planted/$(basename "$p" .sh)"
	mkdir -p "$d"
	cp "$p" "$d/planted_$(basename "$p" .sh)"
	chmod 755 "$d/planted_$(basename "$p" .sh)"
done
# The demo's image: 4 MiB of recognisable text, one numbered line pattern per page.
awk 'BEGIN { for (p = 0; p < 1024; p++) { l = sprintf("sealmem demo image, page %04d. ", p); s = "";
	while (length(s) < 4096) s = s l; printf "%s", substr(s, 1, 4096) } }' >"$stage/sealmem/image.bin"
chmod 755 "$stage/init" "$stage"/sealmem/*.sh "$stage"/sealmem/tests/* "$stage"/sealmem/sealmem-demo "$stage"/sealmem/sealmem_bench "$stage"/sealmem/sealmem_fuzz
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
