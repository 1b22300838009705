"""Data flows one way (measure -> store -> fit -> predict -> search): importing a package never loads one
downstream of it, and no package imports another's private module."""

from __future__ import annotations

import re
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
    private = re.compile(r"(?:from|import)\s+latprof\.(\w+)\.(_\w+)")
    offences = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0]
        for line in path.read_text().splitlines():
            for package, module in private.findall(line):
                if package != own:
                    offences.append(f"{path.relative_to(PACKAGE)}: latprof.{package}.{module}")
    assert not offences, offences
