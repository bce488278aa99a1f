"""The dependency direction of DESIGN.md, by folder: commands -> reporting -> studies -> training ->
optim/models -> nn/data/fitting -> cli/provenance -> device -> kernels.

Checked on the source (every import statement, also those inside functions) and in a fresh
interpreter (what importing a kernel module actually loads). A module's room is its folder under
rramk/ (or, at the top level, its own name), so a new module in a folder is covered the day it is
written; a new top-level module must be given a floor here.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOORS = {"kernels": 0, "device": 1, "cli": 2, "provenance": 2, "data": 3, "fitting": 3, "nn": 3, "optim": 4,
          "models": 4, "training": 5, "studies": 6, "reporting": 7,
          **{command: 8 for command in ("train", "ablation", "characterize", "fit", "report", "demo", "evaluate")}}
"""The floor of each room: a room imports only rooms on lower floors (and itself)."""


def _room(module: str) -> str | None:
    """The room of an rramk module name: rramk.<room>[.<module>...]; None for rramk itself."""
    parts = module.split(".")
    return parts[1] if parts[0] == "rramk" and len(parts) > 1 else None


def _modules() -> list[tuple[str, Path]]:
    """(module name, path) of every module of the rramk package (kernels/ is installed as rramk.kernels)."""
    found = []
    for root, prefix in ((REPO / "rramk", "rramk"), (REPO / "kernels", "rramk.kernels")):
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((prefix, *parts[:-1])) if parts[-1] == "__init__" else ".".join((prefix, *parts))
            found.append((name, path))
    return found


def _imports(path: Path, package: str) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against ``package``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((REPO / "kernels").glob("*.py")), ids=lambda p: p.name)
def test_kernels_import_only_the_stream_constants_from_rramk(path):
    rramk = {n for n in _imports(path, "rramk.kernels") if n.startswith("rramk") and not n.startswith("rramk.kernels")}
    assert rramk <= {"rramk.device", "rramk.device.streams"}, f"{path.name} imports {sorted(rramk)}"


LAYERED = [(m, p) for m, p in _modules() if _room(m) not in (None, "kernels")]  # kernels: the stricter test above


@pytest.mark.parametrize("module,path", LAYERED, ids=[m for m, _ in LAYERED])
def test_every_module_imports_only_lower_floors(module, path):
    """Every import of every module points down (or within its room), by folder."""
    room = _room(module)
    assert room in FLOORS, f"{module}: room {room!r} has no floor in tests/test_layout.py (commands -> ... -> kernels)"
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    upward = sorted({n for n in _imports(path, package)
                     if _room(n) not in (None, room) and _room(n) in FLOORS and FLOORS[_room(n)] > FLOORS[room]})
    assert not upward, f"{module} (floor {FLOORS[room]}) imports {upward}, on higher floors"


def test_the_floor_test_can_fail(tmp_path):
    """A module of the device room that imports the training loop is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..training.loop import train\nimport rramk.reporting.index\n")
    names = _imports(probe, "rramk.device")
    assert {"rramk.training.loop", "rramk.reporting.index"} <= names
    assert [n for n in names if _room(n) in FLOORS and FLOORS[_room(n)] > FLOORS["device"]]


def test_importing_a_kernel_loads_no_other_rramk_module():
    probe = ("import sys, rramk.kernels.weak_reset, rramk.kernels.weak_reset_adam, rramk.kernels.xnor; "
             "print(sorted(m for m in sys.modules if m.startswith('rramk') and not m.startswith('rramk.kernels')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['rramk', 'rramk.device', 'rramk.device.streams']"
