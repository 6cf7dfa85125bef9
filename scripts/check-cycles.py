#!/usr/bin/env python3
"""No call cycles between source files, no #include cycles between headers (make check-cycles).

Call graph: the nodes are the C files of CALL_DIRS; A -> B when A calls a non-static function
that B defines (definitions from Universal Ctags; calls are `name(` outside comments and
literals, so a function only referred to by address, as in a method table, is no edge). Include
graph: the nodes are the project's headers; A -> B when A has `#include "B"` (resolved from the
tree's root, as -I. does, or from A's directory). Every strongly connected component of more
than one node, and every header that includes itself, is a cycle: each is printed with the
functions or includes on its edges, and the exit status is 1. The layering the call graph keeps
is docs/ARCHITECTURE.md's "Layering".

Usage: scripts/check-cycles.py [--root DIR] (from anywhere; default: this script's tree).
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

CALL_DIRS = ("control", "dataplane", "dataplane/nodes")
# Headers: every *.h under these (generated code and the build tree are not the project's).
HEADER_DIRS = ("control", "dataplane", "client", "clients", "perf", "tests")

# Comments, string and character literals: blanked before calls are looked for.
_NOISE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def c_files(root):
    out = []
    for d in CALL_DIRS:
        path = os.path.join(root, d)
        if os.path.isdir(path):
            out += sorted(os.path.join(d, f) for f in os.listdir(path) if f.endswith(".c"))
    return out


def definitions(root, files):
    """Non-static functions: name -> the file defining it."""
    res = subprocess.run(
        ["ctags", "-o", "-", "--output-format=json", "--languages=C", "--kinds-C=f",
         "--fields=+n"] + files, cwd=root, capture_output=True, text=True, check=True)
    defs = {}
    for line in res.stdout.splitlines():
        tag = json.loads(line)
        if tag.get("_type") != "tag" or tag.get("file"):  # "file": static (file scope)
            continue
        defs.setdefault(tag["name"], tag["path"])
    return defs


def call_graph(root):
    files = c_files(root)
    defs = definitions(root, files)
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for f in files:
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            text = _NOISE.sub(" ", fh.read())
        for m in _CALL.finditer(text):
            g = defs.get(m.group(1))
            if g is not None and g != f:
                edges[f][g].add(m.group(1))
    return files, edges


def headers(root):
    out = []
    for d in HEADER_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames[:] = sorted(n for n in dirnames if n != "build")
            out += sorted(os.path.relpath(os.path.join(dirpath, n), root)
                          for n in filenames if n.endswith(".h"))
    return out


def include_graph(root):
    hs = headers(root)
    known = set(hs)
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for h in hs:
        with open(os.path.join(root, h), encoding="utf-8", errors="replace") as fh:
            text = re.sub(r"/\*.*?\*/", " ", fh.read(), flags=re.S)
        for m in _INCLUDE.finditer(text):
            inc = m.group(1)
            for cand in (inc, os.path.normpath(os.path.join(os.path.dirname(h), inc))):
                if cand in known:
                    edges[h][cand].add("#include \"%s\"" % inc)
                    break
    return hs, edges


def cycles(nodes, edges):
    """Strongly connected components with a cycle (Tarjan's, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in edges[v]:
                    out.append(sorted(comp))
    return out


def report(what, comps, edges):
    for comp in comps:
        print("check-cycles: %s cycle among %s" % (what, ", ".join(comp)))
        for a in comp:
            for b in comp:
                if b in edges[a]:
                    print("    %s -> %s: %s" % (a, b, ", ".join(sorted(edges[a][b]))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().root
    files, calls = call_graph(root)
    hs, incs = include_graph(root)
    call_cycles = cycles(files, calls)
    inc_cycles = cycles(hs, incs)
    report("call", call_cycles, calls)
    report("include", inc_cycles, incs)
    if call_cycles or inc_cycles:
        print("check-cycles: FAILED (docs/ARCHITECTURE.md, \"Layering\")")
        return 1
    print("check-cycles: no call cycle among %d files, no include cycle among %d headers"
          % (len(files), len(hs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
