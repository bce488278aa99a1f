"""The dependency direction of DESIGN.md: commands -> learning -> device -> kernels.

Checked on the source (every import statement, also those inside functions) and in a fresh
interpreter (what importing a kernel module actually loads).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEARNING_AND_COMMANDS = ("optim", "nn", "models", "train", "run_settings", "ablation", "report", "characterize",
                         "fit", "fitting", "binarize", "binary_products", "data", "demo", "distributed")


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


@pytest.mark.parametrize("path", sorted((REPO / "rramk" / "device").glob("*.py")), ids=lambda p: p.name)
def test_the_device_package_imports_no_learning_or_command_module(path):
    bad = {n for n in _imports(path, "rramk.device")
           if n.startswith("rramk.") and n.split(".")[1] in LEARNING_AND_COMMANDS}
    assert not bad, f"rramk/device/{path.name} imports {sorted(bad)}"


def test_importing_a_kernel_loads_no_other_rramk_module():
    probe = ("import sys, rramk.kernels.weak_reset, rramk.kernels.weak_reset_adam, rramk.kernels.xnor; "
             "print(sorted(m for m in sys.modules if m.startswith('rramk') and not m.startswith('rramk.kernels')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['rramk', 'rramk.device', 'rramk.device.streams']"
