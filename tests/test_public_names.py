"""Every public name of rramk, rramk.device and rramk.kernels means one thing, whatever was imported first.

The packages export their names lazily (a module ``__getattr__``), which Python consults only when
the package has no attribute of that name; importing a submodule sets one. So an export named
like a submodule turns into that module once the submodule is imported: the documented
``rramk.kernels.xnor_matmul(a, b, k)`` once failed after ``rramk.kernels.pack_signs`` had been
used. Checked statically (no export shares its name with a submodule) and in a fresh interpreter:
for each package, in every order of importing the modules its exports come from (each prefix of
each permutation), and after importing any one submodule of the three packages, every public name
of the three is read and must be the object its module defines.
"""

import importlib
import itertools
import json
import pkgutil
import subprocess
import sys
import types

import pytest

PACKAGES = ("rramk", "rramk.device", "rramk.kernels")

# Runs in a fresh interpreter: argv[1] is JSON {"packages": [...], "orders": [[module, ...], ...]}.
# Before each order every rramk module is dropped from sys.modules, so the order starts from an
# unimported rramk (torch and Triton, which do not hold rramk's names, stay loaded: they are slow).
CHECK_ORDERS = r"""
import importlib, json, sys, types

spec = json.loads(sys.argv[1])
failures = []
for order in spec["orders"]:
    for name in [n for n in sys.modules if n == "rramk" or n.startswith("rramk.")]:
        del sys.modules[name]
    try:
        for module in order:
            importlib.import_module(module)
        packages = {p: importlib.import_module(p) for p in spec["packages"]}
        read = {(p, name): getattr(pkg, name) for p, pkg in packages.items() for name in pkg.__all__}
    except Exception as exc:
        failures.append(f"after importing {order}: {type(exc).__name__}: {exc}")
        continue
    for (p, name), value in read.items():
        source = packages[p]._EXPORTS[name]
        source = source if "." in source else f"{p}.{source}"
        expected = getattr(importlib.import_module(source), name)
        if isinstance(value, types.ModuleType) or value is not expected:
            failures.append(f"after importing {order}: {p}.{name} is {value!r}, expected {source}.{name}")
print(json.dumps({"orders": len(spec["orders"]), "failures": failures}))
"""


def submodules(package_name: str) -> list[str]:
    package = importlib.import_module(package_name)
    return [info.name for info in pkgutil.iter_modules(package.__path__)]


def source_modules(package_name: str) -> list[str]:
    """The modules the lazy exports of a package come from, as absolute names."""
    sources = importlib.import_module(package_name)._EXPORTS.values()
    return sorted({source if "." in source else f"{package_name}.{source}" for source in sources})


@pytest.mark.parametrize("package_name", PACKAGES)
def test_no_export_is_named_like_a_submodule(package_name):
    package = importlib.import_module(package_name)
    assert sorted(package._EXPORTS) == list(package.__all__), f"{package_name}.__all__ lists its lazy exports"
    clashes = set(package.__all__) & set(submodules(package_name))
    assert not clashes, f"{package_name} exports {sorted(clashes)}, which are also its submodules"


def test_documented_kernel_functions_are_exported():
    # DESIGN.md: rramk.kernels.weak_reset_update(...), .xnor_matmul(...), .pack_signs(...), and the rest
    kernels = importlib.import_module("rramk.kernels")
    assert set(kernels.__all__) >= {"weak_reset_update", "weak_reset_adam_step", "xnor_matmul", "pack_signs",
                                    "xnor_conv2d", "sign_matmul_tc"}
    for name in kernels.__all__:
        value = getattr(kernels, name)
        assert callable(value) and not isinstance(value, types.ModuleType), f"rramk.kernels.{name} is {value!r}"


def test_every_name_in_every_import_order():
    orders = {()}
    for package_name in PACKAGES:
        for permutation in itertools.permutations(source_modules(package_name)):  # every prefix of each
            orders.update(permutation[:i] for i in range(1, len(permutation) + 1))
        orders.update((f"{package_name}.{name}",) for name in submodules(package_name))  # any one submodule first
    spec = {"packages": PACKAGES, "orders": sorted(orders, key=lambda order: (len(order), order))}
    run = subprocess.run([sys.executable, "-c", CHECK_ORDERS, json.dumps(spec)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["orders"] == len(orders)
    assert not result["failures"], "\n".join(result["failures"][:20])
