#!/usr/bin/env python3
"""The code's shape, checked by `make lint`: no Rust file over 800 lines, and no two modules
of a crate that import each other, directly or around a loop.

A module depends on another when its code (comments and its `mod tests` aside) names it
through `crate::…`, `super::…` or `self::…`: in a `use` tree or in a path. A module and its
own ancestors or descendants never count as a cycle.

    scripts/code-shape.py crates/*/src tests/src     (sources: every .rs under crates/ and tests/)
"""

import pathlib
import re
import sys


def modules(source):
    """Each module of the crate under `source`, by its path, and its file."""
    found = {}
    for path in source.rglob("*.rs"):
        parts = list(path.relative_to(source).with_suffix("").parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts.pop()
        found[tuple(parts)] = path
    return found


def code_of(path):
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("//")]
    return re.split(r"#\[cfg\(test\)\]\s*mod tests\b", "\n".join(lines))[0]


def resolve(known, current, path):
    """The longest known module `path` (crate::…, super::…, self::…) names from `current`."""
    segments = path.split("::")
    if segments[0] == "crate":
        base = []
    elif segments[0] == "self":
        base = list(current)
    else:
        base = list(current)
        while segments and segments[0] == "super":
            base, segments = base[:-1], segments[1:]
        segments = ["super"] + segments
    found, at = None, list(base)
    for segment in segments[1:]:
        at.append(segment)
        if tuple(at) not in known:
            break
        found = tuple(at)
    return found


def related(a, b):
    shorter, longer = sorted((a, b), key=len)
    return longer[: len(shorter)] == shorter


def dependencies(known):
    edges = {module: set() for module in known}
    for module, path in known.items():
        code = code_of(path)
        named = re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", code)
        for prefix, tree in re.findall(r"\buse\s+((?:crate|super|self)(?:::\w+)*)::\{([^;]*)\};", code, re.S):
            named += [f"{prefix}::{name}" for name in re.findall(r"\w+(?:::\w+)*", tree)]
        for path_named in named:
            target = resolve(known, module, path_named)
            if target and not related(target, module):
                edges[module].add(target)
    return edges


def cycles(edges):
    """The strongly connected groups of more than one module (Tarjan)."""
    order, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted("::".join(m) for m in group))

    sys.setrecursionlimit(10_000)
    for node in edges:
        if node not in order:
            visit(node)
    return groups


MAX_LINES = 800


def main():
    failed = False
    for path in sorted(pathlib.Path(".").glob("crates/**/*.rs")) + sorted(pathlib.Path(".").glob("tests/**/*.rs")):
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            print(f"{path}: {lines} lines; split it along its ideas (at most {MAX_LINES})")
            failed = True
    for source in map(pathlib.Path, sys.argv[1:]):
        for group in cycles(dependencies(modules(source))):
            print(f"{source}: these modules import each other in a cycle: {', '.join(group)}")
            failed = True
    if failed:
        sys.exit(1)
    print(f"code-shape: no file over {MAX_LINES} lines, no import cycle in {len(sys.argv) - 1} crates")


if __name__ == "__main__":
    main()
