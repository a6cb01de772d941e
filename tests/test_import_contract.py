"""The packages' import contract (scripts/import_graph.py's LAYERS) holds, and its check bites."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def _graph() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and annotations look the module up
    spec.loader.exec_module(module)
    return module


def test_the_code_keeps_the_import_contract():
    g = _graph()
    modules = g.module_graph()
    assert g.violations(g.room_graph(modules), modules) == []


def test_the_runtime_imports_no_area_and_no_area_imports_the_composition_root():
    rooms = (g := _graph()).room_graph(g.module_graph())
    runtime = {r for r in rooms if r.split(".")[0] == "edge_agent"}
    areas = {"drivers", "rules", "models", "cloud_sync", "tui", "firmware_profiles"}
    for r in runtime:
        assert not {d.split(".")[0] for d in rooms[r]} & (areas - {"firmware_profiles"}), r
    for r in rooms:
        if r.split(".")[0] in areas:
            assert "beerflow_edge" not in rooms[r], r
    assert [r for r in rooms if "simulators" in rooms[r]] == ["beerflow_edge"]


def test_the_check_reports_an_upward_import_a_circle_and_an_unplaced_package():
    g = _graph()
    layers = (frozenset({"low"}), frozenset({"high"}))
    rooms = {"low": {"high"}, "high": {"low"}, "stray": set()}
    modules = {"low.a": {"high.b"}, "high.b": {"low.a"}, "stray.c": set()}
    found = g.violations(rooms, modules, layers, ())
    assert "low imports high, which is in a higher layer" in found
    assert "stray is in no layer: add it to LAYERS in scripts/import_graph.py" in found
    assert "modules import each other: high.b <-> low.a" in found


def test_a_deferred_or_type_only_import_counts(tmp_path):
    g = _graph()
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rules.service import RulesService\n"
        "def f():\n    from cloud_sync import service\n"
        "import importlib\nimportlib.import_module('tui.app')\n"
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    found = g.imports_of(path, "edge_agent.m")
    assert {"rules.service", "cloud_sync", "tui.app"} <= found


def test_the_script_prints_the_drawing_and_checks():
    g = _graph()
    out = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True
    ).stdout
    assert "edge_agent -> (nothing)" in out
    res = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    layers = subprocess.run(
        [sys.executable, str(SCRIPT), "--layers"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert layers[0].split()[:2] == [str(len(g.LAYERS) - 1), "beerflow_edge"]
    assert layers[-1].split() == ["0", "edge_agent", "->", "(nothing)"]
