#!/usr/bin/env python3
"""Print which package imports which, read from the code (every import, even deferred ones).

    python scripts/import_graph.py              # package -> packages it imports
    python scripts/import_graph.py --modules    # the same between modules, with any circles
    python scripts/import_graph.py --mermaid    # a Mermaid flowchart of the packages
    python scripts/import_graph.py --layers     # the layers, top first, direct edges only
    python scripts/import_graph.py --check      # enforce LAYERS (part of `make check`)

Rooms are the first-level packages (`edge_agent.runtime`, `drivers.modbus`, `rules`, ...);
imports under `if TYPE_CHECKING:` count too, because they tie the code together all the same.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "beerflow_edge",
    "edge_agent",
    "drivers",
    "firmware_profiles",
    "rules",
    "models",
    "cloud_sync",
    "cloud_api",
    "tui",
    "simulators",
    "integrations",
)
# Packages whose subpackages are rooms of their own.
SPLIT = {"edge_agent", "drivers"}

# The import contract, bottom layer first: a room imports only rooms in layers below its own.
# The runtime (edge_agent) imports no area; areas never import the composition root
# (beerflow_edge); transports never import each other; only the demo imports the simulators.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer)
    for layer in (
        {"edge_agent"},
        {"edge_agent.store", "firmware_profiles"},
        {"edge_agent.config"},
        {"edge_agent.area", "drivers"},
        {"drivers.ble", "drivers.modbus", "drivers.mqtt", "drivers.opcua", "drivers.serial"},
        {"rules", "models"},
        {"cloud_sync"},
        {"cloud_api", "tui", "simulators", "integrations"},
        {"rules.cli", "cloud_sync.cli"},
        {"cloud_api.cli"},
        {"beerflow_edge"},
    )
)
# Upward imports known and owned elsewhere, each with its reason; a new one fails.
KNOWN_UPWARD: dict[tuple[str, str], str] = {
    # GET /haccp/verify answers with the CLI's chain status, which checks the cloud's receipt
    # with the sync identity: to move into a module below both.
    ("rules", "rules.cli"): "the HACCP verify route reuses the CLI's receipt check",
}
# Circles between modules inside one room that are known and owned elsewhere; a new one fails.
KNOWN_MODULE_CIRCLES: tuple[frozenset[str], ...] = (
    frozenset({"tui.app", "tui.views"}),
    frozenset({"rules.haccp.presets", "rules.model"}),
    frozenset({"simulators.ble", "simulators.ble.demo", "simulators.ble.sensors"}),
    frozenset({"rules.haccp.report", "rules.haccp.report_pdf"}),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room(module: str) -> str:
    parts = module.split(".")
    if parts[-1] == "cli" and parts[0] != "beerflow_edge":
        # An area's subcommands are an entry point: they sit with the composition root and
        # may use other areas (`haccp verify` checks the cloud's receipts, say).
        return module
    if parts[0] in SPLIT and len(parts) > 1:
        if (ROOT / parts[0] / parts[1]).is_dir():
            return f"{parts[0]}.{parts[1]}"
        return parts[0]
    return parts[0]


def imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {f for f in found if f.split(".")[0] in PACKAGES}


def module_graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            modules[module_name(path)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imp in imports_of(path, name):
            # `from a.b import c` names either module a.b.c or attribute c of a.b
            while imp and imp not in modules:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                targets.add(imp)
        graph[name] = targets
    return graph


def room_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = defaultdict(set)
    for src, targets in graph.items():
        rooms[room(src)]  # every room appears, even one that imports nothing
        for t in targets:
            if room(t) != room(src):
                rooms[room(src)].add(room(t))
    return dict(rooms)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def reduced(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same reachability with fewer arrows: a -> c goes when a reaches c through another."""

    def reaches(src: str, dst: str, skip: str) -> bool:
        seen, todo = set(), [n for n in graph.get(src, ()) if n != skip]
        while todo:
            n = todo.pop()
            if n == dst:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(graph.get(n, ()))
        return False

    return {a: {c for c in cs if not reaches(a, c, c)} for a, cs in graph.items()}


def violations(
    rooms: dict[str, set[str]],
    modules: dict[str, set[str]],
    layers: tuple[frozenset[str], ...] = LAYERS,
    known: tuple[frozenset[str], ...] = KNOWN_MODULE_CIRCLES,
) -> list[str]:
    """Every way the code breaks the contract, as sentences; empty when it keeps it."""
    rank = {r: i for i, layer in enumerate(layers) for r in layer}
    out = []
    for src in sorted(rooms):
        if src not in rank:
            out.append(f"{src} is in no layer: add it to LAYERS in scripts/import_graph.py")
            continue
        for dst in sorted(rooms[src]):
            if dst in rank and rank[dst] >= rank[src] and (src, dst) not in KNOWN_UPWARD:
                why = "the same layer" if rank[dst] == rank[src] else "a higher layer"
                out.append(f"{src} imports {dst}, which is in {why}")
    for circle in cycles(modules):
        if frozenset(circle) not in known:
            out.append("modules import each other: " + " <-> ".join(circle))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", action="store_true", help="module level, with circles")
    ap.add_argument("--mermaid", action="store_true", help="a Mermaid flowchart of the rooms")
    ap.add_argument("--check", action="store_true", help="exit 1 if the code breaks LAYERS")
    ap.add_argument("--layers", action="store_true", help="the layers, top first, reduced")
    args = ap.parse_args()
    graph = module_graph()
    if args.layers:
        rooms = reduced(room_graph(graph))
        for i, layer in reversed(list(enumerate(LAYERS))):
            for r in sorted(layer & rooms.keys()):
                print(f"{i}  {r:<18} -> {', '.join(sorted(rooms[r])) or '(nothing)'}")
        return 0
    if args.check:
        found = violations(room_graph(graph), graph)
        for v in found:
            print(f"import contract: {v}", file=sys.stderr)
        if not found:
            print(f"import contract kept: {len(graph)} modules, {len(LAYERS)} layers")
        return 1 if found else 0
    g = graph if args.modules else room_graph(graph)
    if args.mermaid:
        g = reduced(g)
        print("flowchart TD")
        for src in sorted(g):
            for dst in sorted(g[src]):
                print(f"    {src.replace('.', '_')}[{src}] --> {dst.replace('.', '_')}[{dst}]")
        return 0
    for src in sorted(g):
        print(f"{src} -> {', '.join(sorted(g[src])) or '(nothing)'}")
    found = cycles(g)
    print()
    if found:
        for c in found:
            print("circle:", " <-> ".join(c))
    else:
        print("no circles")
    return 1 if found and args.modules else 0


if __name__ == "__main__":
    raise SystemExit(main())
