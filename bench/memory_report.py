"""reports/memory.md from the measurements of memory_per_synapse.py: tables and capacity.

:func:`report` writes the header (command, machine, method), the bytes per synapse of every
operation and backend, the shipped fixed cost (one chunk's temporaries), the persistent bytes
and the largest arrays that fit in an H200's 140 GB, and every raw measurement. Its input is
``{(operation, backend): per_synapse(...)}`` (:mod:`memory_measurement`).
"""

from __future__ import annotations

import datetime
import json

from memory_measurement import BACKENDS, OPERATIONS

# What the caller holds after the operation, bytes per synapse of a float32 array: its result.
RESULT_BYTES = {"construct": "17: state 16 + weights 1", "apply_pulses": "0: state in place",
                "adam_step": "0: state, moments in place", "weights": "4: float32",
                "log_resistance": "8: (2, N) float32", "resistance": "16: 2 x float64",
                "pulse_counts": "8: 2 x int32", "rtn_states": "2: 2 x uint8", "pink_terms": "8: 2 x float32",
                "d2d_parameters": "56: 7 x (2, N) float32", "state_dict": "18: t 8 + s 2 + pink 8",
                "load_state_dict": "0: state in place", "from_state_dict": "17: a new array"}
GB = 140e9  # the H200's memory as the issue states it
CONTEXT = 1e9  # allowed for the CUDA context and the caching allocator's slack (not measured here)
PHILOX_LIMIT = 2**32 - 1  # synapses per array (the Philox counter c0)


def largest(persistent: float, transient: float, fixed: float) -> float:
    """Synapses whose persistent and transient bytes fit in GB bytes after ``fixed``."""
    return (GB - fixed) / (persistent + transient)


def _cell(results: dict, op: str, backend: str, key: str, fmt: str = "{:.1f}") -> str:
    """``results[(op, backend)][key]`` formatted, or "-" when it was not measured."""
    r = results.get((op, backend))
    return "-" if r is None or key not in r else fmt.format(r[key])


def _header(args, elapsed: float) -> list[str]:
    """The title, the command, the machine and the method, up to the bytes table's heading."""
    from rramk.provenance import command_line, machine_line

    return [
        "# Memory per synapse of DeviceArray operations",
        "",
        f"Command: `{command_line()}` ({elapsed / 60:.1f} min). Date: {datetime.date.today().isoformat()}.",
        f"Machine: {machine_line()}.",
        "",
        "Method: bench/memory_per_synapse.py (its docstring). Each backend in a fresh process per size, "
        f"N = 2**{args.sizes[0]} and 2**{args.sizes[1]} synapses (float32 arrays), chunks of 2**{args.chunk} "
        "synapses; figures are differences between the sizes divided by the difference of N, so fixed costs "
        "cancel. **torch**: exact, the bytes torch allocates (profiler allocation events); **rss**: resident "
        "memory, a cross-check (+-0.3 B). Peak: above everything alive before the call (the array, the "
        "inputs); it includes the result. Kept: the result. \"triton\" is the dispatcher's GPU path with the "
        "fused kernels stubbed (a kernel allocates nothing): the bytes of a GPU run; its other operations run "
        "the reference's code (the reads go through the reference in chunks on every backend but compiled).",
        "",
    ]


def _bytes_table(results: dict, chunk: int) -> list[str]:
    """The table of bytes per synapse, one row per operation (``chunk``: synapses per chunk in these runs)."""
    lines = [
        "## Bytes per synapse",
        "",
        "| operation | result (B/syn) | reference: peak / kept | compiled: peak / kept | triton (GPU path): "
        "peak / kept | rss peak: reference / compiled | fixed: B per chunk synapse, reference / compiled |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in OPERATIONS:
        cells = [f"{_cell(results, op, b, 'torch_peak')} / {_cell(results, op, b, 'torch_kept')}" for b in BACKENDS]
        if (op, "triton") not in results and (op, "reference") in results:
            cells[2] = "= reference"
        rss = " / ".join(_cell(results, op, b, "rss_peak") for b in ("reference", "compiled"))
        fixed = " / ".join("-" if (op, b) not in results else f"{results[(op, b)]['torch_peak_fixed'] / chunk:.0f}"
                           for b in ("reference", "compiled"))
        lines.append(f"| {op} | {RESULT_BYTES[op]} | " + " | ".join(cells) + f" | {rss} | {fixed} |")
    return lines


def _fixed_cost(results: dict, chunk: int) -> tuple[float, list[str]]:
    """The shipped fixed cost in bytes (the largest per chunk synapse x REFERENCE_CHUNK), and its paragraph."""
    from rramk.device.backends import REFERENCE_CHUNK

    per_chunk = max([r["torch_peak_fixed"] / chunk for (op, b), r in results.items() if b == "reference"] or [0.0])
    fixed = per_chunk * REFERENCE_CHUNK
    return fixed, [
        "",
        "The transient part of an operation is peak - kept. The fixed cost is one chunk's temporaries, given "
        "per synapse of the chunk: with the shipped REFERENCE_CHUNK of "
        f"{REFERENCE_CHUNK} synapses the largest is {per_chunk:.0f} x {REFERENCE_CHUNK} = {fixed / 1e6:.0f} MB "
        "(the reference, and the GPU path's reads; compiled code works on "
        "COMPILE_CHUNK synapses at a time within a chunk, so its fixed cost grows less than this).",
        "",
    ]


def _capacity_section(results: dict, fixed: float) -> list[str]:
    """Persistent bytes and the largest arrays in GB (GPU path); [] unless construct, apply_pulses, adam_step ran."""

    def gpu(op):
        return results.get((op, "triton")) or results.get((op, "reference"))

    if not all(gpu(op) is not None for op in ("construct", "apply_pulses", "adam_step")):
        return []
    update = max(gpu("apply_pulses")["torch_peak"], 0.0)
    adam = max(gpu("adam_step")["torch_peak"], 0.0)
    construct = gpu("construct")["torch_peak"]
    bare = 16 + 1 + 4  # state, weights cache, the caller's int32 pulses
    layer = 16 + 1 + 4 + 4 + 8  # state, weights, parameter, gradient, Adam moments
    layer_step = adam + 1  # the step's, plus the optimizer's (before != after) bool
    allowance = fixed + CONTEXT
    return [
        "## Persistent bytes and the largest arrays in 140 GB (H200)",
        "",
        "| item | bytes per synapse |",
        "|---|---|",
        "| device state: pulse counts with RTN bits (int32 x 2), pink terms (float32 x 2) | 16 |",
        "| weights cache (int8) | 1 |",
        "| pulses passed to apply_pulses (int32, the caller's tensor) | 4 |",
        "| WeakResetAdam: parameter (float32) + gradient (float32) | 8 |",
        "| WeakResetAdam: Adam moments exp_avg, exp_avg_sq (float32) | 8 |",
        "",
        f"Synapses that fit in {GB / 1e9:.0f} GB ({GB:.3g} bytes) on the GPU path, after a fixed "
        f"{allowance / 1e9:.2f} GB: one chunk's temporaries ({fixed / 1e9:.2f} GB, above) and "
        f"{CONTEXT / 1e9:.0f} GB allowed for the CUDA context and the caching allocator's slack. "
        f"Construction peaks at {construct:.1f} B per synapse (the new array), below either use:",
        "",
        "| use | persistent B/syn | transient B/syn (peak of a step) | synapses that fit | arrays needed |",
        "|---|---|---|---|---|",
        f"| (a) bare DeviceArray updated by apply_pulses | {bare} | {update:.1f} | "
        f"{largest(bare, update, allowance):.3g} | {-(-largest(bare, update, allowance) // PHILOX_LIMIT):.0f} |",
        f"| (b) layer trained by WeakResetAdam (parameter, gradient, moments, state) | {layer} | "
        f"{layer_step:.1f} (adam_step, + 1 of the optimizer's flip count) | "
        f"{largest(layer, layer_step, allowance):.3g} | "
        f"{-(-largest(layer, layer_step, allowance) // PHILOX_LIMIT):.0f} |",
        "",
        f"One array holds fewer than 2**32 = {2**32:.3g} synapses (the Philox counter c0): (a) needs "
        "several arrays (layers), each with its own seed. Reads a user asks for add their result on top "
        "(weights() 4 B, log_resistance() 8 B, resistance() 16 B, d2d_parameters() 56 B per synapse, "
        "d2d_parameters(\"t_star\") 8 B). Not counted: a network's activations. "
        "WeakResetAdam.device_statistics(), once per epoch, reads DeviceArray.wear(): chunk by chunk, "
        "nothing of the array's size (it used to stack the pulse counts in float64 with all seven D2D "
        "parameters, ~100 B per synapse; tests/test_memory.py checks wear() against that).",
        "",
    ]


def _raw_section(results: dict) -> list[str]:
    """Every measured row, as JSON lines in a code block."""
    lines = ["## Raw measurements (bytes; rss from KiB)", "", "```"]
    for key in sorted(results):
        for row in results[key]["raw"]:
            lines.append(json.dumps(row))
    return lines + ["```", ""]


def report(results: dict, args, elapsed: float) -> str:
    """reports/memory.md: header, bytes per synapse, fixed cost, capacity in 140 GB, raw rows."""
    chunk = 1 << args.chunk
    fixed, fixed_lines = _fixed_cost(results, chunk)
    lines = _header(args, elapsed) + _bytes_table(results, chunk) + fixed_lines
    lines += _capacity_section(results, fixed) + _raw_section(results)
    return "\n".join(lines)
