#!/usr/bin/env bash
# Install everything sealmem needs on a Debian 12 machine, as root. Idempotent: when all is
# already there it only checks and returns.
. "$(dirname "$0")/lib.sh"

APT_PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev qemu-system-x86 busybox-static flex bison
	bc libelf-dev libssl-dev cpio kmod rsync xz-utils make gcc libc6-dev
	man-db groff-base python3)
BINDGEN_MIN=0.71.1

missing=()
for p in "${APT_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
	step apt-update apt-get update -q
	step apt-install env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v rustup >/dev/null || die "rustup not found; this project uses the machine's rustup toolchain"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	step rust-src rustup component add rust-src
fi
if ! rustup target list --installed 2>/dev/null | grep -q '^x86_64-unknown-linux-musl'; then
	step rust-musl rustup target add x86_64-unknown-linux-musl
fi

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
bg_ver=$(bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$bg_ver" ] || ! version_ge "$bg_ver" "$BINDGEN_MIN"; then
	step bindgen-install cargo install bindgen-cli --locked
fi
msg "toolchain: $(rustc --version), $(bindgen --version), $(clang-19 --version | head -n 1)"
