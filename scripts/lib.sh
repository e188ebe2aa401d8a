# shellcheck shell=bash
# Common helpers for sealmem's set-up and build scripts. Source it; do not run it.
#
# Every long step goes through `step NAME CMD...`: it prints what runs, a heartbeat with the
# elapsed time every 30 s, writes the full output to $SEALMEM_LOGS/NAME.log, and on failure
# prints the log path and its last lines, then exits non-zero.

set -euo pipefail

SEALMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Expensive outputs (kernel source, kernel builds, bindgen) live outside the checkout so a
# fresh clone reuses them. Override with SEALMEM_CACHE.
SEALMEM_CACHE=${SEALMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealmem}
SEALMEM_LOGS=${SEALMEM_LOGS:-$SEALMEM_ROOT/build/logs}
SEALMEM_BUILD=${SEALMEM_BUILD:-$SEALMEM_ROOT/build}
LLVM_SUFFIX=-19
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$SEALMEM_CACHE" "$SEALMEM_LOGS" "$SEALMEM_BUILD"

# The kernel source package this project builds against, and the version last tested.
KSRC_PKG=linux-source-7.3
KSRC_TESTED_VERSION=7.3.4-1~bpo13+1
KSRC_SUITE=trixie-backports

msg() { printf '[sealmem] %s\n' "$*" >&2; }
die() { printf '[sealmem] ERROR: %s\n' "$*" >&2; exit 1; }

# step NAME CMD... : run CMD with progress lines and a full log.
step() {
	local name=$1; shift
	local log="$SEALMEM_LOGS/$name.log"
	local start=$SECONDS
	msg "$name: running (log: $log)"
	"$@" >"$log" 2>&1 &
	local pid=$!
	# A heartbeat every 30 s; it takes its sleep with it when killed.
	(
		trap 'kill "$s" 2>/dev/null; exit 0' TERM
		while :; do
			sleep 30 & s=$!
			wait "$s"
			msg "$name: still running, $((SECONDS - start)) s elapsed"
		done
	) &
	local hb=$!
	local rc=0
	wait "$pid" || rc=$?
	kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null
	if [ "$rc" -ne 0 ]; then
		msg "$name: FAILED after $((SECONDS - start)) s (exit $rc); full log: $log"
		msg "last lines of $log:"
		tail -n 40 "$log" >&2
		exit "$rc"
	fi
	msg "$name: done in $((SECONDS - start)) s"
}

# Bump when scripts/build-kernel.sh changes how a kernel is built (make targets, variables):
# it is part of the cache key, like the fragments and the toolchain versions.
KERNEL_RECIPE=1

# Kernel build directory for a flavour (base|debug), keyed by everything that affects it.
kernel_key() {
	local flavour=$1
	{
		cat "$SEALMEM_CACHE/ksrc/VERSION"
		cat "$SEALMEM_ROOT/kernel-config/base.config"
		[ "$flavour" = debug ] && cat "$SEALMEM_ROOT/kernel-config/debug.config"
		echo "recipe $KERNEL_RECIPE"
		"clang$LLVM_SUFFIX" --version | head -n 1
		rustc --version
		bindgen --version
	} | sha256sum | cut -c1-16
}

kernel_dir() {
	local flavour=$1
	echo "$SEALMEM_CACHE/kernel-$flavour-$(kernel_key "$flavour")"
}

# The kernel tree (pristine, shared by all builds).
ksrc_dir() { echo "$SEALMEM_CACHE/ksrc/linux"; }
