#!/usr/bin/env python3
"""Fails (exit 1) when a function in helixrouter's `src/` is longer than 80 lines.

Lines are counted raw, from the line with `fn` to the line with its closing brace
(doc comments and attributes above it not included). Functions inside
`#[cfg(test)] mod tests` are left out: a test may read as one long story.

    python3 scripts/long-functions.py [LIMIT]      (from the repository root)
"""
import glob
import re
import sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 80
FN = re.compile(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def code(line):
    """The line without string/char literals and a trailing `//` comment."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


def long_functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    tests = next((i for i, l in enumerate(lines) if re.match(r"\s*mod tests\b", l)
                  and i > 0 and "cfg(test)" in lines[i - 1]), len(lines))
    for i, line in enumerate(lines[:tests]):
        m = FN.match(line)
        if not m:
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            text = code(lines[j])
            for c in text:
                if c == "{":
                    depth, opened = depth + 1, True
                elif c == "}":
                    depth -= 1
            if (opened and depth == 0) or (not opened and text.rstrip().endswith(";")):
                break
            j += 1
        if opened and j - i + 1 > LIMIT:
            yield j - i + 1, i + 1, m.group(6)


found = sorted(((n, f, line, name) for f in glob.glob("src/**/*.rs", recursive=True)
                for n, line, name in long_functions(f)), reverse=True)
for n, f, line, name in found:
    print(f"{f}:{line}: fn {name} is {n} lines (limit {LIMIT})")
if found:
    sys.exit(1)
print(f"no function in src/ over {LIMIT} lines")
