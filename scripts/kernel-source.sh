#!/usr/bin/env bash
# Fetch and unpack Debian's linux-source-7.3 into the cache (once). The package comes from the
# trixie-backports suite of the same Debian mirror the machine's apt sources already use; the
# URI is read from those sources, never written into this repository.
. "$(dirname "$0")/lib.sh"

dst="$SEALMEM_CACHE/ksrc"
if [ -f "$dst/VERSION" ] && [ -f "$dst/linux/Makefile" ]; then
	msg "kernel source: $(cat "$dst/VERSION") (cached in $dst)"
	exit 0
fi

list=/etc/apt/sources.list.d/sealmem-trixie-backports.sources
if ! apt-cache policy "$KSRC_PKG" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	[ "$(id -u)" -eq 0 ] || die "need root to add the $KSRC_SUITE apt suite"
	uri=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	if [ -z "$uri" ]; then
		uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
	fi
	[ -n "$uri" ] || die "cannot find the Debian mirror URI in /etc/apt/sources*; add $KSRC_SUITE by hand"
	msg "adding $KSRC_SUITE from the machine's Debian mirror ($list)"
	cat >"$list" <<SRC
Types: deb
URIs: $uri
Suites: $KSRC_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	# Never let the backports suite upgrade anything on this machine.
	cat >/etc/apt/preferences.d/sealmem-trixie-backports <<PREF
Package: *
Pin: release n=$KSRC_SUITE
Pin-Priority: 1
PREF
	step apt-update-backports apt-get update -q
fi

ver=$(apt-cache policy "$KSRC_PKG" | awk '/Candidate:/ {print $2}')
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
	die "package $KSRC_PKG is not available from $KSRC_SUITE any more (last tested: $KSRC_TESTED_VERSION). Backports suites keep only recent uploads; update KSRC_PKG in scripts/lib.sh."
fi
[ "$ver" = "$KSRC_TESTED_VERSION" ] || msg "note: $KSRC_PKG $ver differs from the version last tested ($KSRC_TESTED_VERSION)"

tmp="$SEALMEM_CACHE/ksrc.tmp"
rm -rf "$tmp"; mkdir -p "$tmp"
( cd "$tmp" && step ksrc-download apt-get download "$KSRC_PKG=$ver" )
step ksrc-unpack-deb dpkg -x "$tmp"/"$KSRC_PKG"_*.deb "$tmp/deb"
tarball=$(find "$tmp/deb" -name 'linux-source-*.tar.xz' | head -n 1)
[ -n "$tarball" ] || die "no linux-source tarball inside the $KSRC_PKG package"
mkdir -p "$tmp/src"
step ksrc-untar tar -C "$tmp/src" -xf "$tarball"
top=$(find "$tmp/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
rm -rf "$dst"; mkdir -p "$dst"
mv "$top" "$dst/linux"
echo "$KSRC_PKG $ver" >"$dst/VERSION"
rm -rf "$tmp"
msg "kernel source: $KSRC_PKG $ver in $dst/linux"
