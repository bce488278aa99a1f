"""rramk installs with its kernels as the subpackage rramk.kernels, never as a top-level `kernels`."""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    "import importlib.util, rramk, rramk.kernels, rramk.kernels.weak_reset; "
    "print(rramk.__file__); print(rramk.kernels.__file__); "
    "print(importlib.util.find_spec('kernels') is None)"
)


def _probe(cwd: Path, env_path: str | None = None) -> list[str]:
    env = None
    if env_path is not None:
        import os

        env = dict(os.environ, PYTHONPATH=env_path)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_editable_install_imports_rramk_kernels(tmp_path):
    # an rramk.egg-info left in the checkout can shadow the installed metadata: look at every one
    editable = any(json.loads(d.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable")
                   for d in importlib.metadata.distributions(name="rramk"))
    if not editable:
        pytest.skip("rramk is not installed in editable mode here (pip install -e .)")
    rramk_file, kernels_file, no_top_level = _probe(tmp_path)
    assert Path(rramk_file).parent == REPO / "rramk"
    assert Path(kernels_file).parent == REPO / "kernels"
    assert no_top_level == "True"


@pytest.mark.slow
def test_regular_install_imports_rramk_kernels(tmp_path):
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(REPO)]
    try:
        import setuptools  # noqa: F401

        cmd.insert(4, "--no-build-isolation")
    except ImportError:
        pass
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert (target / "rramk" / "kernels" / "weak_reset.py").is_file()
    for source in ("native_weak_reset.c", "native_xnor.c"):  # the native kernels' sources ship
        assert (target / "rramk" / "kernels" / source).is_file()
    assert not (target / "kernels").exists()
    rramk_file, kernels_file, no_top_level = _probe(tmp_path, env_path=str(target))
    assert Path(rramk_file).parent == target / "rramk"
    assert Path(kernels_file).parent == target / "rramk" / "kernels"
    assert no_top_level == "True"
