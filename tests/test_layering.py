"""Data flows one way (measure -> store -> fit -> predict -> search): importing a package never loads one
downstream of it, and no package imports another's private module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import latprof

DOWNSTREAM = {
    "space": {"lut", "predictor", "search", "farm", "cli", "measure"},
    "store": {"lut", "predictor", "search", "farm", "cli", "space"},
    "lut": {"predictor", "search", "farm", "cli"},
    "predictor": {"search", "farm", "cli", "loopback"},
    "search": {"predictor", "farm", "cli"},
}
PACKAGE = Path(latprof.__file__).parent


@pytest.mark.parametrize("package", sorted(DOWNSTREAM))
def test_importing_a_package_loads_nothing_downstream(package):
    code = (f"import sys, latprof.{package}; "
            "print(' '.join(sorted({n.split('.')[1] for n in sys.modules if n.startswith('latprof.')})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout.split())
    assert package in loaded
    assert not loaded & DOWNSTREAM[package], f"latprof.{package} loads {sorted(loaded & DOWNSTREAM[package])}"


def test_no_module_imports_another_packages_private_module():
    offences = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                       [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for module in modules:
                parts = module.split(".")
                if parts[0] != "latprof" or len(parts) < 2 or parts[1] == own:
                    continue
                names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
                hidden = [p for p in parts[2:] if p.startswith("_")] + [n for n in names if n.startswith("_")]
                if hidden:
                    offences.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {', '.join(hidden)} of {module}")
    assert not offences, offences
