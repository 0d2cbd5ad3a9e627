#!/usr/bin/python3
"""The include/call graph of user/: which module uses which.

A module is a user/ source file without its extension (foo.c and foo.h are
one module). An arrow A -> B means A includes B's header or calls a
function (or uses a variable) that B defines, as the object files say
(nm). Prints the arrows, the strongly connected components with more than
one module (cycles), and, with --layers FILE, every arrow that runs from a
lower layer to a higher one. Exit status 1 if there is a cycle or an
arrow up.

    scripts/callgraph.py [--objs build/user] [--layers user/LAYERS] [--dot]
"""
import argparse
import os
import re
import subprocess
import sys


def module_of(top, path):
    """foo.c and foo.h are module foo; everything in a folder under
    @top (user/k8s/) is one module named after the folder."""
    rel = os.path.relpath(path, top)
    parts = rel.split(os.sep)
    if len(parts) > 1:
        return parts[0]
    return parts[0].rsplit(".", 1)[0]


def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if f.endswith((".c", ".h")):
                p = os.path.join(root, f)
                mods.setdefault(module_of(src, p), []).append(p)
    return mods


def includes(mods):
    arrows = set()
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for m, files in mods.items():
        for f in files:
            for h in inc.findall(open(f).read()):
                cand = [os.path.join(os.path.dirname(f), h),
                        os.path.join(src_top, h)]
                for c in cand:
                    if os.path.exists(c):
                        n = module_of(src_top, c)
                        if n in mods and n != m:
                            arrows.add((m, n))
                        break
    return arrows


def calls(objdir):
    defs, uses = {}, {}
    for root, _, files in os.walk(objdir):
        for f in files:
            if not f.endswith(".o"):
                continue
            m = module_of(objdir, os.path.join(root, f[:-2]))
            src = os.path.join(src_top, os.path.relpath(
                os.path.join(root, f[:-2] + ".c"), objdir))
            if not os.path.exists(src):
                continue  # a stale object of a source that is gone
            out = subprocess.run(["nm", os.path.join(root, f)],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in "TDBR":
                    defs[parts[2]] = m
                elif len(parts) == 2 and parts[0] == "U":
                    uses.setdefault(m, set()).add(parts[1])
    arrows = set()
    for m, syms in uses.items():
        for s in syms:
            if s in defs and defs[s] != m:
                arrows.add((m, defs[s]))
    return arrows


def sccs(nodes, arrows):
    """Tarjan's algorithm."""
    succ = {n: sorted(b for a, b in arrows if a == n) for n in nodes}
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
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
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return [c for c in out if len(c) > 1]


def read_layers(path):
    """LAYERS: one layer per line, lowest first: 'name: mod mod ...'."""
    rank = {}
    for i, line in enumerate(l for l in open(path)
                             if l.strip() and not l.startswith("#")):
        _, mods = line.split(":", 1)
        for m in mods.split():
            rank[m] = i
    return rank


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="user")
    ap.add_argument("--objs", default="build/user")
    ap.add_argument("--layers")
    ap.add_argument("--dot", action="store_true")
    a = ap.parse_args()
    global src_top
    src_top = a.src
    mods = modules(a.src)
    arrows = includes(mods) | calls(a.objs)
    arrows = {(x, y) for x, y in arrows if x in mods and y in mods}
    if a.dot:
        print("digraph user {")
        for x, y in sorted(arrows):
            print('  "%s" -> "%s";' % (x, y))
        print("}")
        return 0
    bad = 0
    print("%d modules, %d arrows" % (len(mods), len(arrows)))
    for x in sorted(mods):
        outs = sorted(y for a_, y in arrows if a_ == x)
        print("  %-12s -> %s" % (x, " ".join(outs) or "-"))
    cyc = sccs(set(mods), arrows)
    for c in cyc:
        print("cycle: " + " ".join(c))
        bad = 1
    if a.layers:
        rank = read_layers(a.layers)
        for m in sorted(mods):
            if m not in rank:
                print("no layer: " + m)
                bad = 1
        for x, y in sorted(arrows):
            if x in rank and y in rank and rank[y] > rank[x]:
                print("up: %s -> %s" % (x, y))
                bad = 1
    print("%d cycle(s)" % len(cyc))
    return bad


if __name__ == "__main__":
    sys.exit(main())
