#!/usr/bin/env python3
"""Checks the layout rules of src/ (ARCHITECTURE.md, docs/decisions/0013-layout.md):

1. no import circle between the files of src/: a file depends on another when it names an item
   defined there (through `use crate::…`, `super::…`, `self::…`, a child module's path, or an
   inline `crate::…` path); a name re-exported by a `mod.rs` counts as a use of the file that
   defines it, and `mod child;` declarations are not uses; unit tests (`#[cfg(test)]` modules
   and the files declared as such) are not counted: a test may build its input with the API
   above the code it tests;
2. no file of src/ over 700 lines;
3. no function over 100 lines outside tests (`#[cfg(test)]` modules and `*_tests.rs` files).

Prints every broken rule (for a circle: the files that close it, in order) and exits 1, or
prints one summary line and exits 0. Standard library only; reads text, compiles nothing.

    python3 scripts/check-layout.py [--graph]     # --graph: print each file's dependencies
"""

import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 100


def strip(text):
    """The code with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 300])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and not (text[i - 1].isalnum() or text[i - 1] == "_")):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


def matching_brace(code, open_pos):
    depth = 0
    for j in range(open_pos, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def test_spans(code):
    """(start, end) of each `#[cfg(test)]` item (a test module or test helper)."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", code):
        spans.append((m.start(), matching_brace(code, m.end() - 1)))
    return spans


TEST_FILES = set()  # module paths of files declared `#[cfg(test)] mod name;`


class Module:
    def __init__(self, path, file):
        self.path = path  # ("serve", "http")
        self.file = file  # src-relative file name
        self.children = {}  # name -> module path (files or inline modules)
        self.items = set()
        self.reexports = {}  # name -> full path tuple it re-exports


def module_files():
    files = {}
    for root, _, names in os.walk(SRC):
        for name in names:
            if not name.endswith(".rs") or name == "main.rs":
                continue
            rel = os.path.relpath(os.path.join(root, name), SRC)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            files[tuple(parts)] = rel
    return files


def expand_use(tree):
    """`a::{b, c::{d, e as f}}` -> [("a","b"), ("a","c","d"), ("a","c","e")] (aliases dropped;
    each with the name it binds)."""
    # `x as y` becomes `x@y` before spaces go (`@` is in no Rust path), so a name that merely
    # contains "as" (`mask_url`, `Base`) is never read as an alias.
    tree = re.sub(r"\s+as\s+", "@", tree)
    tree = re.sub(r"\s+", "", tree)
    results = []

    def walk(prefix, text):
        depth, start, parts = 0, 0, []
        for k, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(text[start:k])
                start = k + 1
        parts.append(text[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = [s for s in part[:brace].split("::") if s]
                walk(prefix + head, part[brace + 1:part.rfind("}")])
            else:
                alias = None
                if "@" in part:
                    part, alias = part.split("@", 1)
                segs = prefix + [s for s in part.split("::") if s]
                if segs and segs[-1] == "self":
                    segs = segs[:-1]
                results.append((tuple(segs), alias or (segs[-1] if segs else "")))

    walk([], tree)
    return results


USE_RE = re.compile(r"(?<![\w:])(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
ITEM_RE = re.compile(r"(?<![\w:])(?:fn|struct|enum|trait|type|const|static|union)\s+(\w+)|macro_rules!\s*(\w+)")
INLINE_MOD_RE = re.compile(r"(?<![\w:])mod\s+(\w+)\s*([;{])")
PATH_RE = re.compile(r"(?<![\w:])(\$crate|crate|super|self)((?:\s*::\s*\w+)+)")


def scope_at(inline, pos):
    """The inline-module names enclosing pos, outermost first."""
    return tuple(name for name, start, end in inline if start < pos < end)


def load_modules():
    files = module_files()
    modules = {path: Module(path, rel) for path, rel in files.items()}
    sources = {}
    for path, rel in files.items():
        with open(os.path.join(SRC, rel), encoding="utf-8") as handle:
            text = handle.read()
        code = strip(text)
        sources[path] = (text, code)
        module = modules[path]
        inline = []
        for m in INLINE_MOD_RE.finditer(code):
            if m.group(2) == "{":
                inline.append((m.group(1), m.end() - 1, matching_brace(code, m.end() - 1)))
        module.inline = inline
        for m in INLINE_MOD_RE.finditer(code):
            scope = scope_at(inline, m.start())
            if not scope:
                module.children[m.group(1)] = path + (m.group(1),)
                if m.group(2) == ";" and re.search(r"#\[cfg\(test\)\]\s*$", code[:m.start()]):
                    TEST_FILES.add(path + (m.group(1),))
        for m in ITEM_RE.finditer(code):
            if not scope_at(inline, m.start()):
                module.items.add(m.group(1) or m.group(2))
    return modules, sources


def absolute(modules, file_path, scope, segs):
    """A use path as a path from the crate root (inline scopes are part of the file)."""
    here = list(file_path) + list(scope)
    if not segs:
        return None
    if segs[0] in ("crate", "$crate"):
        return list(segs[1:])
    out = list(here)
    rest = list(segs)
    if rest[0] == "self":
        rest = rest[1:]
    else:
        while rest and rest[0] == "super":
            out = out[:-1]
            rest = rest[1:]
        if segs[0] != "super":
            # A bare path: a child module of here, or an external crate.
            owner = modules.get(tuple(file_path))
            if not scope and owner and segs[0] in owner.children:
                return list(file_path) + list(segs)
            return None
    return out + rest


def resolve(modules, segs, seen=None):
    """The file (module path) that defines what a crate-rooted path names, following mod.rs
    re-exports; None for external or unknown names."""
    seen = seen or set()
    key = tuple(segs)
    if key in seen:
        return None
    seen.add(key)
    module = ()
    rest = list(segs)
    while rest and module + (rest[0],) in modules:
        module = module + (rest[0],)
        rest = rest[1:]
    if module not in modules:
        return None
    if not rest or rest[0] == "*":
        return module
    name = rest[0]
    target = modules[module]
    if name in target.reexports:
        found = resolve(modules, list(target.reexports[name]) + rest[1:], seen)
        if found is not None:
            return found
    if name in target.children and target.children[name] not in modules:
        return module  # an inline module of that file
    return module


def collect_reexports(modules, sources):
    for path, module in modules.items():
        _, code = sources[path]
        for m in USE_RE.finditer(code):
            if not m.group(1):
                continue
            scope = scope_at(module.inline, m.start())
            if scope:
                continue
            for segs, alias in expand_use(m.group(2)):
                full = absolute(modules, path, scope, segs)
                if full is not None and alias and alias != "*":
                    module.reexports[alias] = tuple(full)


def dependencies(modules, sources):
    graph = {path: {} for path in modules}
    for path, module in modules.items():
        if path in TEST_FILES or module.file.endswith("_tests.rs"):
            continue
        text, code = sources[path]
        aliases = {}  # a name bound to a module of the crate -> that module's path
        uses = []
        reexport_spans = []
        for m in USE_RE.finditer(code):
            scope = scope_at(module.inline, m.start())
            if m.group(1) and not scope:
                reexport_spans.append((m.start(), m.end()))
            for segs, alias in expand_use(m.group(2)):
                full = absolute(modules, path, scope, segs)
                if full is None:
                    continue
                if tuple(full) in modules and alias != "*":
                    aliases[alias] = tuple(full)
                if m.group(1) and not scope and alias != "*":
                    continue  # a re-export: its users are counted where they use it
                uses.append((full, m.start()))
        for m in PATH_RE.finditer(code):
            segs = [s.strip() for s in (m.group(1) + m.group(2)).split("::")]
            full = absolute(modules, path, scope_at(module.inline, m.start()), segs)
            if full is not None:
                uses.append((full, m.start()))
        names = set(module.children) | set(aliases)
        if names:
            bare = re.compile(r"(?<![\w:$])(" + "|".join(map(re.escape, sorted(names))) + r")((?:\s*::\s*\w+)+)")
            for m in bare.finditer(code):
                if any(start <= m.start() < end for start, end in reexport_spans):
                    continue
                segs = [s.strip() for s in m.group(2).split("::") if s.strip()]
                base = aliases.get(m.group(1)) or module.children.get(m.group(1))
                if base is not None:
                    uses.append((list(base) + segs, m.start()))
        tests = test_spans(code)
        for full, pos in uses:
            if any(start < pos < end for start, end in tests):
                continue  # a unit test may build its input with the API above it
            target = resolve(modules, full)
            if target is not None and target != path and target in modules:
                graph[path].setdefault(target, line_of(code, pos))
    return graph


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan), each with one circle."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_circle(graph, component):
    """A shortest circle through the component's first file (breadth-first)."""
    members = set(component)
    start = component[0]
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                circle = [v]
                while previous[circle[-1]] is not None:
                    circle.append(previous[circle[-1]])
                return list(reversed(circle)) + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return component


FN_RE = re.compile(r"(?<![\w:])fn\s+(\w+)")


def long_functions(path, module, text, code):
    found = []
    if path in TEST_FILES or module.file.endswith("_tests.rs"):
        return found
    tests = test_spans(code)
    for m in FN_RE.finditer(code):
        if any(start < m.start() < end for start, end in tests):
            continue
        # the body: the first `{` after the signature at bracket depth 0, unless `;` comes first
        depth, j = 0, m.end()
        while j < len(code):
            ch = code[j]
            if ch in "(<[":
                depth += 1
            elif ch in ")>]":
                depth -= 1 if ch != ">" or code[j - 1] != "-" else 0
            elif ch == ";" and depth <= 0:
                j = -1
                break
            elif ch == "{" and depth <= 0:
                break
            j += 1
        if j < 0 or j >= len(code):
            continue
        end = matching_brace(code, j)
        lines = line_of(code, end) - line_of(code, m.start()) + 1
        if lines > MAX_FUNCTION_LINES:
            found.append((line_of(code, m.start()), m.group(1), lines))
    return found


def main():
    modules, sources = load_modules()
    collect_reexports(modules, sources)
    graph = dependencies(modules, sources)
    name = lambda path: "src/" + modules[path].file
    problems = []
    if "--graph" in sys.argv:
        for path in sorted(graph):
            print(name(path) + ": " + " ".join(sorted(name(t) for t in graph[path])))
    for component in cycles(graph):
        circle = one_circle(graph, component)
        steps = " -> ".join(
            f"{name(a)}:{graph[a][b]}" for a, b in zip(circle, circle[1:])
        ) + " -> " + name(circle[-1])
        problems.append(
            f"import circle among {len(component)} files ({', '.join(name(p) for p in component)});"
            f" one circle (file:line of the use): {steps}"
        )
    for path, module in sorted(modules.items()):
        text, code = sources[path]
        count = text.count("\n") + (0 if text.endswith("\n") else 1)
        if count > MAX_FILE_LINES:
            problems.append(f"{name(path)}: {count} lines, over {MAX_FILE_LINES}: split it by meaning")
        for line, fn, lines in long_functions(path, module, text, code):
            problems.append(f"{name(path)}:{line}: fn {fn} is {lines} lines, over {MAX_FUNCTION_LINES}")
    if problems:
        for problem in problems:
            print("check-layout: " + problem)
        print(f"check-layout: {len(problems)} problem(s) in {len(modules)} files of src/")
        return 1
    edges = sum(len(targets) for targets in graph.values())
    print(f"check-layout: {len(modules)} files, {edges} dependencies, no circle; "
          f"files <= {MAX_FILE_LINES} lines, functions <= {MAX_FUNCTION_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
