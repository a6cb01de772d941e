"""One exception root per package: every exception a package defines descends from it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from cloud_api.errors import CloudError
from cloud_sync.errors import SyncError
from drivers.errors import DriverError
from edge_agent.errors import EdgeError
from rules.errors import RulesError
from tui.errors import TerminalError

ROOTS: dict[str, type[BaseException]] = {
    "edge_agent": EdgeError,
    "beerflow_edge": EdgeError,
    "firmware_profiles": EdgeError,
    "drivers": DriverError,
    "rules": RulesError,
    "cloud_sync": SyncError,
    "cloud_api": CloudError,
    "tui": TerminalError,
}


def _exceptions(package: str) -> list[type[BaseException]]:
    found = []
    root = importlib.import_module(package)
    names = [package] + [
        m.name
        for m in pkgutil.walk_packages(root.__path__, f"{package}.")
        if not m.ispkg and not m.name.endswith(".__main__")  # running it is the CLI
    ]
    for name in names:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseException)
                and obj.__module__ == name
                and not obj.__name__.startswith("_")  # private control flow, never escapes
            ):
                found.append(obj)
    return found


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_descends_from_its_package_root(package: str):
    root = ROOTS[package]
    stray = [
        f"{e.__module__}.{e.__qualname__}"
        for e in _exceptions(package)
        if e is not root and not issubclass(e, root)
    ]
    assert not stray, f"outside {root.__name__}: {stray}"


def test_every_package_root_is_an_edge_error_except_the_cloud_service():
    for package, root in ROOTS.items():
        assert issubclass(root, EdgeError) == (package != "cloud_api"), package
