#!/usr/bin/env bash
# Build the base or debug kernel out of tree, from tinyconfig + committed fragments, into a
# cache directory keyed by everything that affects the result (source version, fragments,
# this script, clang/rustc/bindgen versions). A cached, finished build is reused as is.
#
#   scripts/build-kernel.sh base|debug     prints the build directory on stdout
. "$(dirname "$0")/lib.sh"

flavour=${1:-}
case "$flavour" in base|debug) ;; *) die "usage: $0 base|debug" ;; esac

src=$(ksrc_dir)
[ -f "$src/Makefile" ] || die "no kernel source in $src; run scripts/kernel-source.sh"
out=$(kernel_dir "$flavour")

if [ -f "$out/.sealmem-done" ]; then
	msg "$flavour kernel: cached ($out)"
	echo "$out"
	exit 0
fi

# Drop stale builds of this flavour (several GiB each).
for old in "$SEALMEM_CACHE"/kernel-"$flavour"-*; do
	[ -d "$old" ] && [ "$old" != "$out" ] && { msg "removing stale build $old"; rm -rf "$old"; }
done

mkdir -p "$out"
frags=("$SEALMEM_ROOT/kernel-config/base.config")
[ "$flavour" = debug ] && frags+=("$SEALMEM_ROOT/kernel-config/debug.config")
kmake=(make -C "$src" O="$out" LLVM="$LLVM_SUFFIX" ARCH=x86_64)

configure() {
	"${kmake[@]}" tinyconfig
	(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" "${frags[@]}")
	"${kmake[@]}" olddefconfig
}
step "kernel-$flavour-config" configure

# Every option of the fragments (a later fragment overrides an earlier one) must have survived olddefconfig, CONFIG_RUST above all (it is
# dropped silently when a dependency is missing).
grep -q '^CONFIG_RUST=y' "$out/.config" || die "CONFIG_RUST=y did not survive olddefconfig for the $flavour kernel: check 'make LLVM=$LLVM_SUFFIX rustavailable' (see $SEALMEM_LOGS/kernel-$flavour-config.log)"
bad=0
while IFS= read -r line; do
	case "$line" in ''|'#'*) continue ;; esac
	opt=${line%%=*}; val=${line#*=}
	if [ "$val" = n ]; then
		grep -q "^$opt=" "$out/.config" && { msg "config: $opt should be off but is $(grep "^$opt=" "$out/.config")"; bad=1; }
	else
		grep -qx "$line" "$out/.config" || { msg "config: wanted $line, got: $(grep -E "^(# )?$opt[= ]" "$out/.config" || echo 'absent')"; bad=1; }
	fi
done < <(cat "${frags[@]}" | grep -E '^CONFIG_' | awk -F= '{last[$1]=$0; order[$1]=NR} END {for (k in last) print order[k], last[k]}' | sort -n | cut -d' ' -f2-)
[ "$bad" -eq 0 ] || die "the $flavour kernel config lost requested options (above); fix kernel-config/*.config"

step "kernel-$flavour-build" "${kmake[@]}" -j"$(nproc)" bzImage modules
step "kernel-$flavour-headers" "${kmake[@]}" headers_install INSTALL_HDR_PATH="$out/usr"
touch "$out/.sealmem-done"
msg "$flavour kernel: built in $out"
echo "$out"
