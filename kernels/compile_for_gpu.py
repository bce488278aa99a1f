"""Compile every Triton kernel of rramk for real NVIDIA GPUs, on a machine without one.

    python -m rramk.kernels.compile_for_gpu [--arch 80 90] [--out reports/gpu/compile.md] [--json F]

Each kernel module lists the launch configurations its launchers and autotune lists can choose
(``compile_cases()``: signature, constexprs, num_warps/num_stages). Every case is compiled by
``triton.compile`` for each ``GPUTarget("cuda", arch, 32)`` down to a cubin, then ``ptxas -v``
(shipped in Triton's wheel) reports registers, spills and shared memory. A compile error exits 1.

Bytes per element are counted from the kernel's TTIR, not guessed: masked block loads and stores
(``tt.load``/``tt.store`` of a BLOCK-shaped tensor with a mask) are the per-element traffic;
unmasked loads are table lookups that stay in the caches. The predicted throughput is the
smaller of a memory bound (bandwidth / bytes per element) and an issue bound (PTX instructions
per element against the SMs' issue rate), for an H200. Must run without TRITON_INTERPRET (the
interpreter replaces the kernels); ``tests/test_kernel_compile.py`` runs it in a subprocess.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MODULES = ("weak_reset", "weak_reset_adam", "xnor")
# H200 (SXM, 141 GB HBM3e): 4.8 TB/s datasheet, ~4.3 TB/s measured copy; 132 SMs x 4 schedulers
# issuing one warp instruction (32 lanes) per clock at ~1.98 GHz boost.
H200_COPY_BYTES_PER_S = 4.3e12
H200_LANE_INSTRUCTIONS_PER_S = 132 * 4 * 32 * 1.98e9
# Shared memory a block may use (opt-in maximum): A100 (sm_80) 163 KiB, H100/H200 (sm_90) 227 KiB.
SHARED_LIMIT = {80: 163 * 1024, 86: 99 * 1024, 89: 99 * 1024, 90: 227 * 1024}
TTIR_ACCESS = re.compile(r"tt\.(load|store) ([^:]*): tensor<(\d+)x!tt\.ptr<(\w+)>>")
ELEMENT_BYTES = {"i1": 1, "i8": 1, "i16": 2, "f16": 2, "bf16": 2, "i32": 4, "f32": 4, "i64": 8, "f64": 8}
PTX_INSTRUCTION = re.compile(r"^\s+(?:@%p\d+\s+)?[a-z][\w.:]*\s.*;\s*$|^\s+(?:@%p\d+\s+)?(?:ret|bar\.sync \d+);")


def ptxas(arch: int) -> str:
    """The ptxas Triton itself uses for ``arch`` (Triton 3.9 uses a newer one from sm_90 on)."""
    from triton.backends.nvidia.compiler import get_ptxas

    return get_ptxas(arch).path


def all_cases() -> list[dict]:
    """Every (kernel, launch configuration) of every kernel module, as picklable descriptions."""
    cases = []
    for module in MODULES:
        mod = importlib.import_module(f"rramk.kernels.{module}")
        for case in getattr(mod, "compile_cases", lambda: [])():
            cases.append({"module": module, **case})
    return cases


def traffic_per_element(ttir: str, block: int) -> tuple[float, float]:
    """(bytes loaded, bytes stored) per element: masked BLOCK-shaped loads and stores in the TTIR."""
    loaded = stored = 0.0
    for kind, operands, length, element in TTIR_ACCESS.findall(ttir):
        masked = operands.count("%") >= (2 if kind == "load" else 3)  # load: ptr, mask[, other]; store: ptr, val, mask
        if int(length) == block and masked:
            if kind == "load":
                loaded += ELEMENT_BYTES[element]
            else:
                stored += ELEMENT_BYTES[element]
    return loaded, stored


def ptx_instructions(ptx: str) -> int:
    """Static count of PTX instructions in the kernel body (the kernels have no runtime loops)."""
    return sum(1 for line in ptx.splitlines() if PTX_INSTRUCTION.match(line))


def compile_case(case: dict, arch: int) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    mod = importlib.import_module(f"rramk.kernels.{case['module']}")
    fn = getattr(mod, case["kernel"])
    while not isinstance(fn, JITFunction):  # an autotuned or heuristic kernel wraps the JITFunction
        fn = fn.fn
    source = ASTSource(fn, case["signature"], case["constexprs"])
    options = {"num_warps": case.get("num_warps", 4), "num_stages": case.get("num_stages", 3),
               **case.get("options", {})}
    result = {"module": case["module"], "kernel": case["kernel"], "label": case["label"], "arch": arch,
              "num_warps": options["num_warps"]}
    try:
        compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as error:  # noqa: BLE001  (reported, and the command exits 1)
        return {**result, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    ptx = compiled.asm["ptx"]
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"rramk-{os.getpid()}-{case['kernel']}-{arch}.ptx"
    path.write_text(ptx)
    gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
    info = subprocess.run([ptxas(arch), "-v", f"--gpu-name={gpu}", str(path), "-o", os.devnull],
                          capture_output=True, text=True)
    path.unlink()
    if info.returncode:
        return {**result, "error": f"ptxas: {info.stderr.strip()[:300]}"}
    text = info.stderr
    registers = int(re.search(r"Used (\d+) registers", text).group(1))
    spill_stores = int(re.search(r"(\d+) bytes spill stores", text).group(1))
    spill_loads = int(re.search(r"(\d+) bytes spill loads", text).group(1))
    smem = re.search(r"(\d+) bytes smem", text)
    elements = case.get("elements_per_program")
    loaded, stored = traffic_per_element(compiled.asm["ttir"], case["block"]) if case.get("block") else (None, None)
    instructions = ptx_instructions(ptx)
    result.update(registers=registers, spill_bytes=spill_stores + spill_loads,
                  shared_bytes=max(int(smem.group(1)) if smem else 0, compiled.metadata.shared),
                  loaded_bytes_per_element=loaded, stored_bytes_per_element=stored,
                  ptx_instructions=instructions)
    if elements and loaded is not None:
        threads = 32 * options["num_warps"]
        per_element = instructions * threads / elements  # every thread runs the body once
        memory_bound = H200_COPY_BYTES_PER_S / (loaded + stored)
        issue_bound = H200_LANE_INSTRUCTIONS_PER_S / per_element
        result.update(instructions_per_element=per_element, memory_bound_per_s=memory_bound,
                      issue_bound_per_s=issue_bound, predicted_per_s=min(memory_bound, issue_bound),
                      bound="memory" if memory_bound < issue_bound else "issue")
    return result


def _rate(value) -> str:
    return "" if value is None else f"{value / 1e9:,.0f} G/s"


def markdown(results: list[dict], command: str) -> str:
    import triton

    lines = [
        "# Triton kernels compiled for NVIDIA GPUs (no GPU needed)", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}, triton {triton.__version__}; {datetime.date.today().isoformat()}.",
        f"Command: `{command}`", "",
        "Registers, spills and shared memory from `ptxas -v`; bytes per element counted from the TTIR "
        "(masked BLOCK-shaped loads and stores; table lookups excluded); predicted elements/s on an H200 = "
        "min(4.3 TB/s / bytes, issue rate / PTX instructions per element), an estimate to be checked by "
        "`bash bench/gpu_check.sh`.", "",
        "Shared memory marked **over** exceeds what one block may use on that GPU: the launch fails with "
        "OutOfResources, and autotuning skips that candidate.", "",
        "| kernel | configuration | arch | warps | registers | spill B | smem B | B/elem (ld+st) | "
        "PTX instr/elem | predicted (H200) | bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['kernel']} | {r['label']} | sm_{r['arch']} | | **error** | {r['error']} | | | | | |")
            continue
        traffic = ("" if r["loaded_bytes_per_element"] is None else
                   f"{r['loaded_bytes_per_element']:g} + {r['stored_bytes_per_element']:g}")
        per = r.get("instructions_per_element")
        smem = f"{r['shared_bytes']}" + (" **over**" if r["shared_bytes"] > SHARED_LIMIT.get(r["arch"], 1 << 30) else "")
        lines.append(f"| {r['kernel']} | {r['label']} | sm_{r['arch']} | {r['num_warps']} | {r['registers']} | "
                     f"{r['spill_bytes']} | {smem} | {traffic} | {'' if per is None else f'{per:.0f}'} | "
                     f"{_rate(r.get('predicted_per_s'))} | {r.get('bound', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rramk.kernels.compile_for_gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[80, 90], help="compute capabilities (default 80 90)")
    parser.add_argument("--out", type=Path, help="markdown report to write (e.g. reports/gpu/compile.md)")
    parser.add_argument("--json", type=Path, help="raw results as JSON")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiles")
    parser.add_argument("-k", dest="select", help="only cases whose kernel or label contains this text")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        parser.exit(2, f"{parser.prog}: error: unset TRITON_INTERPRET (the interpreter replaces the kernels)\n")
    cases = [c for c in all_cases() if not args.select or args.select in c["kernel"] + c["label"]]
    jobs = [(case, arch) for case in cases for arch in args.arch]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(compile_case, *zip(*jobs)))
    command = "python -m rramk.kernels.compile_for_gpu " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(results, command.strip()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    failed = [r for r in results if "error" in r]
    spilled = [r for r in results if r.get("spill_bytes")]
    print(f"compiled {len(results) - len(failed)} of {len(results)} kernel configurations for "
          f"sm_{', sm_'.join(map(str, args.arch))}; {len(spilled)} spill registers")
    for r in failed:
        print(f"FAILED {r['kernel']} [{r['label']}] sm_{r['arch']}: {r['error']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
