#!/usr/bin/env bash
# Checks the layering of the kernel module's Rust crate (rust/*.rs; a module's child modules
# in rust/NAME/*.rs count as part of module NAME); README.md "Architecture" shows the layers.
#
#   scripts/check-layers.sh          print the import graph's verdicts; exit 1 on a violation
#   scripts/check-layers.sh --graph  also print every edge "from -> to"
#
# It fails when
#   - the modules import each other in a cycle: an edge A -> B is any `use crate::B...`,
#     any `crate::B::` path, and any item B in a `use crate::{..., B, ...}` group, in A's
#     code (comments are ignored). In the crate root (sealmem_main.rs), which declares the
#     modules, a plain `B::` path is an edge too. A `crate::NAME` that is no module is an
#     item of the crate root (an edge to sealmem_main), except what the `module!` macro
#     generates there (LocalModule, module_parameters);
#   - a logic file (LOGIC below) contains the word `unsafe` outside comments;
#   - a file other than the FFI glue (GLUE) defines an `extern "C" fn` entry point.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/rust"

# The files that hold the module's logic: no unsafe at all (the abstractions below them do).
LOGIC="file.rs file/fault.rs lazy.rs handler.rs stats.rs knobs.rs"
# The one file with `extern "C" fn` entry points (file_operations, vm_operations_struct).
GLUE="fops.rs"
# Items the module! macro generates in the crate root (not edges).
MACRO_ITEMS="LocalModule module_parameters"

graph=0
[ "${1:-}" = --graph ] && graph=1

mods=()
for f in *.rs; do
	m=${f%.rs}
	[ "$m" = sealmem_main ] || mods+=("$m")
done
is_mod() { local x; for x in "${mods[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
is_macro_item() { local x; for x in $MACRO_ITEMS; do [ "$x" = "$1" ] && return 0; done; return 1; }

# sources MODULE: the files of a module (rust/MODULE.rs and its children rust/MODULE/*.rs).
sources() {
	echo "$1.rs"
	if [ -d "$1" ]; then find "$1" -name '*.rs' | sort; fi
}

# code FILE: the file without comments (// to the end of a line; no block comments are used)
# and without string literals' contents.
code() { sed -e 's://.*$::' -e 's/"[^"]*"/""/g' "$1"; }

# names FILE: every name NAME of `crate::NAME` and of `use crate::{NAME, ...}` (top level
# of the group), one a line.
names() {
	local f
	for f in $(sources "$1"); do code "$f"; done | tr '\n' ' ' | awk '
	{
		s = $0
		# crate::{ ... } groups: the first identifier of each top-level item.
		while ((i = index(s, "crate::{")) > 0) {
			s = substr(s, i + 8)
			depth = 1; item = ""; first = 1
			for (j = 1; j <= length(s) && depth > 0; j++) {
				c = substr(s, j, 1)
				if (c == "{") { depth++; first = 0; continue }
				if (c == "}") { depth--; continue }
				if (depth == 1 && c == ",") { if (item != "") print item; item = ""; first = 1; continue }
				if (depth == 1 && first) {
					if (c ~ /[A-Za-z0-9_]/) item = item c
					else if (item != "") first = 0
				}
			}
			if (item != "") print item
			s = substr(s, j)
		}
	}
	{
		s = $0
		while (match(s, /crate::[A-Za-z_][A-Za-z0-9_]*/)) {
			print substr(s, RSTART + 7, RLENGTH - 7)
			s = substr(s, RSTART + RLENGTH)
		}
	}'
}

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in *.rs; do
	from=${f%.rs}
	{
		names "$from"
		if [ "$from" = sealmem_main ]; then
			# The root names its modules without `crate::`.
			code "$f" | grep -v '^[[:space:]]*mod ' | grep -oE '\b[a-z_][a-z0-9_]*::' | sed 's/::$//'
		fi
	} | sort -u | while read -r n; do
		if is_mod "$n"; then
			to=$n
		elif is_macro_item "$n" || [ "$n" = self ] || [ "$from" = sealmem_main ]; then
			continue
		else
			to=sealmem_main
		fi
		[ "$to" = "$from" ] || echo "$from $to"
	done
done | sort -u >"$edges"

fail=0
[ "$graph" = 1 ] && sed 's/ / -> /' "$edges"

# Cycles: tsort names the members of every loop it breaks.
if ! loops=$( { cat "$edges"; for m in "${mods[@]}"; do echo "$m $m"; done; } | tsort 2>&1 >/dev/null); then
	:
fi
if [ -n "$loops" ]; then
	echo "import cycles among rust/*.rs (tsort):"
	echo "$loops" | sed 's/^/  /'
	fail=1
fi

for f in $LOGIC; do
	[ -f "$f" ] || continue
	if code "$f" | grep -nwE 'unsafe' >/dev/null; then
		echo "unsafe in logic file rust/$f:"
		code "$f" | grep -nwE 'unsafe' | sed 's/^/  /'
		fail=1
	fi
done

for f in $(find . -name '*.rs' | sed 's:^\./::' | sort); do
	case " $GLUE " in *" $f "*) continue ;; esac
	if code "$f" | grep -nE 'extern "" fn' >/dev/null; then
		echo "extern \"C\" entry point outside the FFI glue ($GLUE) in rust/$f:"
		code "$f" | grep -nE 'extern "" fn' | sed 's/^/  /'
		fail=1
	fi
done

if [ "$fail" = 0 ]; then
	echo "layers: $(wc -l <"$edges") imports among ${#mods[@]} modules, no cycle; no unsafe in $LOGIC; extern \"C\" entry points only in $GLUE"
fi
exit "$fail"
