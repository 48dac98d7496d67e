#!/usr/bin/env python3
"""Fails (exit 1) when modules of helixrouter's `src/` import each other in a circle.

A module's edges are the `crate::`/`super::`/`self::` paths in its code (comments and
`#[cfg(test)] mod tests` and modules declared under `#[cfg(test)]` left out), resolved to the deepest module they name. Edges to
an ancestor or a descendant are allowed (a submodule uses its parent's types; a parent
declares and re-exports its children). Circles are looked for twice: between modules
(`router::batch` -> `router::dispatch` -> `router::batch`) and between top-level modules
with their submodules folded in (`router` -> `remote` -> `router`).

    python3 scripts/import-circles.py      (from the repository root)
"""
import collections
import glob
import re
import sys


def module_of(path):
    parts = path[len("src/"):-len(".rs")].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def code_of(path):
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    return "\n".join(line.split("//")[0] for line in text.split("\n"))


def resolve(modules, here, path):
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] == "self":
        base, segs = here, segs[1:]
    else:
        base = here
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    for seg in segs:
        if base + (seg,) not in modules:
            break
        base = base + (seg,)
    return base


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def edges_of(modules):
    edges = collections.defaultdict(set)
    for here, path in modules.items():
        code = code_of(path)
        paths = re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", code)
        for root, group in re.findall(r"use\s+(crate|super(?:::super)*)::\{([^;]*)\};", code, re.S):
            paths += [f"{root}::{item}" for item in re.findall(r"\w+(?:::\w+)*", group)]
        for p in paths:
            there = resolve(modules, here, p)
            if not related(here, there):
                edges[here].add(there)
    return edges


def circles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def report(title, edges):
    found = circles(edges)
    for comp in found:
        print(f"import circle ({title}): " + ", ".join("::".join(m) for m in comp))
        for a in comp:
            for b in sorted(edges[a]):
                if b in comp:
                    print(f"    {'::'.join(a)} -> {'::'.join(b)}")
    return len(found)


def test_only(modules):
    """Modules declared under `#[cfg(test)]` (`#[cfg(test)] mod sim_env;`)."""
    out = set()
    for here, path in modules.items():
        text = open(path, encoding="utf-8").read()
        for name in re.findall(r"#\[cfg\(test\)\]\s*mod (\w+);", text):
            out.add(here + (name,))
    return out


def main():
    files = [f for f in glob.glob("src/**/*.rs", recursive=True) if f != "src/main.rs"]
    modules = {module_of(f): f for f in files}
    for m in test_only(modules):
        modules.pop(m, None)
    edges = edges_of(modules)
    top = collections.defaultdict(set)
    for a, targets in edges.items():
        for b in targets:
            if a[:1] != b[:1]:
                top[a[:1]].add(b[:1])
    n = report("modules", edges) + report("top-level modules", top)
    if n:
        sys.exit(1)
    print(f"no import circle among {len(modules)} modules of src/")


main()
