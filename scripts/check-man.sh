#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# check-man.sh: docs/sealmem.4 (the man page) and docs/api.md (the long reference) must not
# drift from the uapi header or from each other. Checks, failing on the first list of
# differences:
#  1. the page renders without warnings: MANWIDTH=80 man --warnings -l docs/sealmem.4
#     (and no rendered line is wider than 80 columns);
#  2. every SEALMEM_IOC_*, SEALMEM_SEAL_*, SEALMEM_FD_*, SEALMEM_FILL_*, SEALMEM_MSG_* and
#     SEALMEM_FEATURE_* the header defines is named in both documents;
#  3. both documents give each ioctl's encoding (direction, code, number, argument type),
#     right after its name, as the header defines it, and no other encoding;
#  4. each seal's and each message / fill flag's value, as both documents give it in
#     parentheses after the name, equals the header's;
#  5. the module parameters (from rust/sealmem_main.rs) are named in both;
#  6. both documents name the same set of errno values.
# What it cannot see: whether the prose of the two documents agrees beyond these names and
# numbers (which errno an ioctl gives in which case is checked per ioctl only by the tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
man_page="$root/docs/sealmem.4"

warn=$(MANWIDTH=80 man --warnings -l "$man_page" 2>&1 >/dev/null) || true
if [ -n "$warn" ]; then
	echo "check-man: man --warnings reports:" >&2
	echo "$warn" >&2
	exit 1
fi
wide=$(MANWIDTH=80 man -l "$man_page" 2>/dev/null | awk 'length > 80')
if [ -n "$wide" ]; then
	echo "check-man: rendered lines wider than 80 columns:" >&2
	echo "$wide" >&2
	exit 1
fi

exec /usr/bin/python3 - "$root" <<'EOF'
import re, sys

root = sys.argv[1]
header = open(f"{root}/include/uapi/linux/sealmem.h").read()
main_rs = open(f"{root}/rust/sealmem_main.rs").read()
docs = {
    "docs/sealmem.4": open(f"{root}/docs/sealmem.4").read(),
    "docs/api.md": open(f"{root}/docs/api.md").read(),
}
problems = []

defines = dict(re.findall(r"^#define\s+(SEALMEM_\w+)\s+(.+?)\s*(?:/\*.*)?$", header, re.M))
magic = int(defines["SEALMEM_IOC_MAGIC"], 0)
nrs = {k: int(v, 0) for k, v in defines.items() if k.startswith("SEALMEM_NR_")}

# 2: every name of the ABI.
prefixes = ("SEALMEM_IOC_", "SEALMEM_SEAL_", "SEALMEM_FD_", "SEALMEM_FILL_", "SEALMEM_MSG_",
            "SEALMEM_FEATURE_")
names = [k for k in defines if k.startswith(prefixes) and k != "SEALMEM_IOC_MAGIC"]
for doc, text in docs.items():
    for name in names:
        if not re.search(rf"\b{name}\b", text):
            problems.append(f"{doc}: does not name {name}")

# 3: ioctl encodings.
def roff_plain(text):
    return text.replace("\\-", "-").replace('"', "")

expected = {}
for name, value in defines.items():
    m = re.match(r"(_IO[RW]*)\(SEALMEM_IOC_MAGIC,\s*(SEALMEM_NR_\w+)(?:,\s*(.+))?\)$", value)
    if m:
        kind, nr, arg = m.group(1), nrs[m.group(2)], m.group(3)
        expected[name] = f"{kind}(0x{magic:02X}, 0x{nr:02x}" + (f", {arg}" if arg else ")")
for doc, text in docs.items():
    plain = roff_plain(text)
    given = set()
    # Every encoding a document writes belongs to the ioctl named just before it.
    for enc in re.finditer(r"_IO[RW]*\(0x[0-9A-Fa-f]{2}, 0x[0-9a-f]{2}[^)\n]*\)?", plain):
        names_before = re.findall(r"SEALMEM_IOC_\w+", plain[max(0, enc.start() - 100):enc.start()])
        if not names_before:
            problems.append(f"{doc}: encoding {enc.group(0)} follows no ioctl name")
            continue
        name = names_before[-1]
        want = expected.get(name)
        if want is None:
            problems.append(f"{doc}: {name} is not an ioctl of the header")
        elif not enc.group(0).startswith(want):
            problems.append(f"{doc}: {name} given as {enc.group(0)}, the header says {want}")
        else:
            given.add(name)
    for name in sorted(set(expected) - given):
        problems.append(f"{doc}: gives no encoding for {name} (the header: {expected[name]})")

# 4: values of seals and flags, where a document gives one: NAME (0xNN) or NAME` (0xNN).
for name, value in defines.items():
    if not name.startswith(("SEALMEM_SEAL_", "SEALMEM_MSG_", "SEALMEM_FILL_")):
        continue
    want = int(value, 0)
    for doc, text in docs.items():
        plain = roff_plain(text).replace("`", "")
        for got in re.findall(rf"\b{name}\s*\((0x[0-9a-fA-F]+)", plain):
            if int(got, 0) != want:
                problems.append(f"{doc}: {name} given as {got}, the header says {value}")

# 5: module parameters.
params = re.findall(r"^\s{8}(\w+): \w+ \{", main_rs, re.M)
if not params:
    problems.append("rust/sealmem_main.rs: found no module parameters (parser out of date)")
for doc, text in docs.items():
    for p in params:
        if p not in text:
            problems.append(f"{doc}: does not name the module parameter {p}")

# 6: errnos.
errnos = set("""EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM
EACCES EFAULT EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY
EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EWOULDBLOCK EOVERFLOW ENOSYS EOPNOTSUPP
ENOTSUP ECANCELED""".split())
found = {doc: set(re.findall(r"\bE[A-Z0-9]{2,}\b", text)) & errnos for doc, text in docs.items()}
(a, sa), (b, sb) = found.items()
for e in sorted(sa - sb):
    problems.append(f"{a} names {e}, {b} does not")
for e in sorted(sb - sa):
    problems.append(f"{b} names {e}, {a} does not")

if problems:
    print("check-man: docs/sealmem.4, docs/api.md and the header disagree:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print(f"check-man: {len(names)} names, {len(nrs)} ioctl numbers, {len(params)} parameters, "
      f"{len(sa)} errnos agree; the page renders without warnings")
EOF
