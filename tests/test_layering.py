"""The architecture's two rules, checked as tests (ARCHITECTURE.md):
pure packages do no I/O, and imports point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "fastl2tp"
PURE = ["wire", "control", "ppp", "config", "ctl", "radius"]
NO_IO = {"asyncio", "socket", "time", "os", "pyroute2", "threading", "subprocess", "selectors", "uvloop", "random"}
# package -> fastl2tp subpackages it must not import
FORBIDDEN_INTERNAL = {
    "wire": {"control", "ppp", "runtime", "daemon", "cli", "config"},
    "control": {"ppp", "runtime", "daemon", "cli"},
    "radius": {"ppp", "runtime", "daemon", "cli"},
    "ppp": {"control", "runtime", "daemon", "cli"},
    "config": {"control", "ppp", "runtime", "daemon", "cli", "ctl", "console"},
    "ctl": {"control", "ppp", "runtime", "daemon", "cli", "console"},
}


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in ``path``, relative imports resolved."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
    return out


def pure_files():
    for pkg in PURE:
        for f in sorted((PKG / pkg).rglob("*.py")) if (PKG / pkg).is_dir() else []:
            yield pkg, f


@pytest.mark.parametrize("pkg,path", list(pure_files()), ids=lambda x: str(x).rsplit("fastl2tp/", 1)[-1])
def test_pure_modules_do_no_io_and_import_one_way(pkg, path):
    for mod, line in imports_of(path):
        top = mod.split(".")[0]
        assert top not in NO_IO, f"{path.relative_to(ROOT)}:{line} imports {mod}"
        if top == "fastl2tp" and len(mod.split(".")) > 1:
            sub = mod.split(".")[1]
            assert sub not in FORBIDDEN_INTERNAL[pkg], f"{path.relative_to(ROOT)}:{line} imports {mod}"


@pytest.mark.parametrize("name", ["cli.py", "console.py"])
def test_cli_does_not_import_the_runtime(name):
    for mod, line in imports_of(PKG / name):
        assert not mod.startswith(("fastl2tp.runtime", "fastl2tp.control", "fastl2tp.ppp")), (mod, line)


def test_importing_the_machines_loads_no_io_module():
    code = ("import sys, fastl2tp.control.endpoint, fastl2tp.ppp.lcp, fastl2tp.ppp.auth, fastl2tp.wire.avp; "
            "print(sorted(m for m in ('asyncio', 'socket', 'pyroute2', 'uvloop') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
