#!/usr/bin/env python3
"""Lists the UNEXPLAINED checks of target/fidelity/differences.md as rows of
fidelity/src/known.rs (sequence, observation, check path, reason), for review: each row is
then kept with its reason, or the difference fixed and the row dropped.
Usage: fidelity/tools/known.py target/fidelity/differences.md"""
import re, sys

def check_path(check):
    if check.startswith("Status."): return "/body/" + check[len("Status."):]
    if check.startswith("header "): return "/headers/" + check[len("header "):]
    if check in ("observed", "ran to the end"): return ""
    return "/" + check

rows = {}
seq = label = check = None
for line in open(sys.argv[1]):
    m = re.match(r"^## .* / `([^`]+)`", line)
    if m: seq = m.group(1); continue
    m = re.match(r"^- \*\*UNEXPLAINED\*\* `([^`]+)` (.*)$", line)
    if m:
        label, check = m.group(1), m.group(2).strip()
        rows.setdefault((seq, label, check_path(check)), []); continue
    if line.startswith("- "): label = None; continue
    m = re.match(r"^  - `([^`]*)`: embedded (.*) / upstream (.*)$", line)
    if m and label: rows[(seq, label, check_path(check))].append((m.group(1), m.group(2), m.group(3)))

def reason(seq, label, path, diffs):
    ptrs = " ".join(d[0] for d in diffs)
    if diffs and all("managedFields" in d[0] for d in diffs): return "MANAGED_FIELDS"
    if seq.startswith("disc-"): return "DISCOVERY"
    if seq.startswith(("tables", "partial")): return "TABLES"
    if seq.startswith("kubectl"): return "KUBECTL"
    if path in ("/body/message", "/body/details") or "/causes/" in ptrs: return "ERROR_TEXT"
    return "GAP"

for (s, l, p), diffs in sorted(rows.items()):
    if l == "sequence": continue
    print(f'    (r#"{s}"#, r#"{l}"#, "{p}", {reason(s, l, p, diffs)}),')
