#!/usr/bin/env bash
# Checks rust/ffi.rs's hand-written declarations of the C helpers against their prototypes in
# rust/sealmem_helpers.h: the same functions, each with the same parameter and return types
# (C types mapped to the Rust types the declarations use). Exit 1 on any difference.
#
# (bindgen cannot read the header on its own: it includes kernel headers, which need the
# kernel build's whole set of flags. The mapping below is the handful of types the helpers
# use; a prototype with any other type fails the check until it is added here.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hdr="$root/rust/sealmem_helpers.h"
rs="$root/rust/ffi.rs"

# c_type TYPE: the Rust spelling of a C type, "?TYPE" if unknown.
c_sigs() {
	# One prototype per line: join lines, split at ';', keep sealmem_* functions.
	sed -e 's:/\*.*\*/::g' -e '/^#/d' "$hdr" | tr '\n\t' '  ' | tr ';' '\n' |
		grep -E 'sealmem_[a-z0-9_]+[[:space:]]*\(' | awk '
	function trim(s) { gsub(/^ +| +$/, "", s); gsub(/ +/, " ", s); return s }
	function rtype(t) {
		t = trim(t)
		gsub(/ \*/, "*", t)
		if (t == "void") return ""
		if (t == "int") return "c_int"
		if (t == "unsigned int") return "c_uint"
		if (t == "unsigned long") return "c_ulong"
		if (t == "size_t") return "usize"
		if (t == "bool") return "bool"
		if (t == "__poll_t") return "bindings::__poll_t"
		if (t == "vm_fault_t") return "bindings::vm_fault_t"
		if (t == "unsigned long*") return "*mut c_ulong"
		if (t == "unsigned int*") return "*mut c_uint"
		if (t ~ /^struct [a-z_0-9]+\*\*$/) { sub(/^struct /, "", t); sub(/\*\*$/, "", t); return "*mut *mut bindings::" t }
		if (t == "void*") return "*mut c_void"
		if (t == "const void*") return "*const c_void"
		if (t ~ /^const struct [a-z_0-9]+\*$/) { sub(/^const struct /, "", t); sub(/\*$/, "", t); return "*const bindings::" t }
		if (t ~ /^struct [a-z_0-9]+\*$/) { sub(/^struct /, "", t); sub(/\*$/, "", t); return "*mut bindings::" t }
		return "?" t
	}
	{
		line = trim($0)
		open = index(line, "(")
		head = trim(substr(line, 1, open - 1))
		args = substr(line, open + 1)
		sub(/\) *$/, "", args)
		# head: return type then name (the name may carry the pointer star of the type).
		n = split(head, w, " ")
		name = w[n]
		ret = substr(head, 1, length(head) - length(name))
		while (substr(name, 1, 1) == "*") { ret = ret "*"; name = substr(name, 2) }
		out = name "("
		if (trim(args) != "void" && trim(args) != "") {
			k = split(args, a, ",")
			for (i = 1; i <= k; i++) {
				arg = trim(a[i])
				# Drop the parameter name: the last identifier.
				m = match(arg, /[A-Za-z_][A-Za-z_0-9]*$/)
				t = substr(arg, 1, m - 1)
				out = out (i > 1 ? ", " : "") rtype(t)
			}
		}
		r = rtype(ret)
		print out ")" (r == "" ? "" : " -> " r)
	}' | sort
}

rs_sigs() {
	sed -e 's://.*$::' "$rs" | tr '\n' ' ' | tr ';' '\n' |
		grep -oE 'fn sealmem_[a-z0-9_]+ *\(.*' | awk '
	function trim(s) { gsub(/^ +| +$/, "", s); gsub(/ +/, " ", s); return s }
	{
		line = trim($0)
		sub(/^fn /, "", line)
		open = index(line, "(")
		name = substr(line, 1, open - 1)
		rest = substr(line, open + 1)
		cp = index(rest, ")")
		args = substr(rest, 1, cp - 1)
		ret = trim(substr(rest, cp + 1))
		sub(/^-> */, "", ret)
		out = name "("
		k = split(args, a, ",")
		j = 0
		for (i = 1; i <= k; i++) {
			arg = trim(a[i])
			if (arg == "") continue
			sub(/^[a-z_0-9]+: */, "", arg)
			out = out (j++ > 0 ? ", " : "") arg
		}
		print out ")" (ret == "" ? "" : " -> " ret)
	}' | sort
}

if ! d=$(diff <(c_sigs) <(rs_sigs)); then
	echo "rust/ffi.rs does not match rust/sealmem_helpers.h ('<' the header, '>' ffi.rs):"
	echo "$d"
	exit 1
fi
echo "ffi: rust/ffi.rs declares the $(c_sigs | wc -l) helpers of rust/sealmem_helpers.h with the same types"
