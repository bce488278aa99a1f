"""Measured weak-RESET traces: resistance against cumulative RESET pulses, one trace per device.

The format (what ``python -m rramk.fit TRACES`` reads):

* CSV: a header line naming the columns ``device,pulse,resistance`` (any order; other columns
  are ignored; blank lines and lines starting with ``#`` are skipped), then one row per read:
  the device's identifier (any text), the cumulative number of weak-RESET pulses that device
  has received since its SET (an integer >= 0) and the resistance read, in ohm (> 0). Any
  number of devices, each with its own number of reads; a device's rows may be interleaved
  with other devices' rows but its pulse counts must increase from row to row.
* NPZ: the same three columns as 1-D arrays ``device``, ``pulse``, ``resistance`` of one length.

Bad input raises ``TraceError`` with one line that names the line (or NPZ entry) or device and
what was expected. ``simulate_traces`` makes traces of simulated devices (``DeviceArray``),
whose parameters are known: the proof that a fit recovers them.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = ("device", "pulse", "resistance")
MIN_READS = 30
"""Fewest reads of a device for a fit of its four mean parameters and its noise."""
MIN_DEVICES = 20
"""Fewest devices for an estimate of a device-to-device distribution."""


class TraceError(ValueError):
    """Traces that cannot be used: the one-line message names the line or device and what was expected."""


@dataclass(frozen=True, eq=False)
class Traces:
    """Reads of many devices: ``pulses[i]`` (int64, increasing) and ``resistance[i]`` (ohm, float64)
    of device ``devices[i]``, with the file they came from and its SHA-256 (None when simulated)."""

    devices: tuple[str, ...]
    pulses: tuple[np.ndarray, ...]
    resistance: tuple[np.ndarray, ...]
    source: str | None = None
    sha256: str | None = None

    def __len__(self) -> int:
        return len(self.devices)

    def log_resistance(self, i: int) -> np.ndarray:
        """ln(R / 1 ohm) of device i's reads."""
        return np.log(self.resistance[i])

    @property
    def reads(self) -> int:
        return sum(len(p) for p in self.pulses)

    def write_csv(self, path) -> Path:
        """Write the traces in the CSV format of the module docstring (resistance with 17 digits)."""
        path = Path(path)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for name, t, r in zip(self.devices, self.pulses, self.resistance):
                writer.writerows((name, int(a), repr(float(b))) for a, b in zip(t, r))
        return path


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pulse(text: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: pulse {text!r} is not a number (expected a cumulative pulse count, an "
                         "integer >= 0)") from None
    if not math.isfinite(value) or value != int(value) or value < 0:
        raise TraceError(f"{where}: pulse {text!r} is not an integer >= 0 (a cumulative pulse count)")
    return int(value)


def _resistance(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: resistance {text!r} is not a number (expected ohm, > 0)") from None
    if not math.isfinite(value) or value <= 0:
        raise TraceError(f"{where}: resistance {text!r} is not a resistance (expected a finite value > 0 ohm)")
    return value


def _collect(rows, min_reads: int, min_devices: int, source, sha256) -> Traces:
    """Traces from (where, device, pulse text, resistance text) rows, with every check."""
    reads: dict[str, list] = {}
    last: dict[str, tuple[int, str]] = {}
    for where, device, pulse_text, resistance_text in rows:
        for column, text in zip(COLUMNS, (device, pulse_text, resistance_text)):
            if text is None or str(text).strip() == "":
                raise TraceError(f"{where}: missing {column} (expected device,pulse,resistance)")
        device = str(device).strip()
        t = _pulse(str(pulse_text).strip(), where)
        r = _resistance(str(resistance_text).strip(), where)
        if device in last:
            previous, previous_where = last[device]
            if t == previous:
                raise TraceError(f"{where}: device {device!r} has a second read at pulse {t} (first at "
                                 f"{previous_where}); remove the duplicate")
            if t < previous:
                raise TraceError(f"{where}: device {device!r}: pulse {t} after pulse {previous} ({previous_where}); "
                                 "pulse counts must increase within a device")
        last[device] = (t, where)
        reads.setdefault(device, []).append((t, r))
    if not reads:
        raise TraceError(f"{source or 'traces'}: no reads (expected rows of device,pulse,resistance)")
    for device, rows_of in reads.items():
        if len(rows_of) < min_reads:
            raise TraceError(f"device {device!r}: {len(rows_of)} reads, too few to fit (at least {min_reads} needed)")
    if len(reads) < min_devices:
        raise TraceError(f"{len(reads)} device(s), too few to estimate a device-to-device distribution (at least "
                         f"{min_devices} needed)")
    names = tuple(reads)
    pulses = tuple(np.array([t for t, _ in reads[n]], dtype=np.int64) for n in names)
    resistance = tuple(np.array([r for _, r in reads[n]], dtype=np.float64) for n in names)
    return Traces(names, pulses, resistance, source=source, sha256=sha256)


def _csv_rows(path: Path):
    with open(path, newline="") as f:
        lines = ((i, line) for i, line in enumerate(f, start=1) if line.strip() and not line.lstrip().startswith("#"))
        header = next(lines, None)
        if header is None:
            raise TraceError(f"{path}: empty file (expected a header line device,pulse,resistance, then one row per "
                             "read)")
        columns = [c.strip().lower() for c in next(csv.reader([header[1]]))]
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            raise TraceError(f"{path}: line {header[0]}: the header lacks column(s) {', '.join(missing)} (expected "
                             "a header line device,pulse,resistance)")
        index = [columns.index(c) for c in COLUMNS]
        for number, line in lines:
            fields = next(csv.reader([line]))
            where = f"line {number}"
            if len(fields) != len(columns):
                raise TraceError(f"{where}: {len(fields)} value(s), expected {len(columns)} ({','.join(columns)})")
            yield (where, *(fields[i] for i in index))


def _npz_rows(path: Path):
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise TraceError(f"{path}: not a NumPy .npz file of arrays device, pulse, resistance ({e})") from None
    with data:
        missing = [c for c in COLUMNS if c not in data.files]
        if missing:
            raise TraceError(f"{path}: lacks array(s) {', '.join(missing)} (expected 1-D arrays device, pulse, "
                             "resistance of one length)")
        arrays = [data[c] for c in COLUMNS]
    lengths = {a.shape for a in arrays}
    if len(lengths) != 1 or arrays[0].ndim != 1:
        raise TraceError(f"{path}: arrays device, pulse, resistance must be 1-D of one length, got shapes "
                         f"{', '.join(str(a.shape) for a in arrays)}")
    for i, (d, t, r) in enumerate(zip(*(a.tolist() for a in arrays))):
        t = "" if isinstance(t, float) and math.isnan(t) else t
        yield (f"entry {i}", d, str(t), str(r))


def read_traces(path, *, min_reads: int = MIN_READS, min_devices: int = MIN_DEVICES) -> Traces:
    """Read and check traces from a CSV file (or a .npz), as the module docstring describes.

    Raises TraceError (one line naming the line, NPZ entry or device) for bad input: missing or
    non-numeric values, resistance <= 0, pulse counts that decrease within a device or repeat,
    a device with fewer than ``min_reads`` reads, fewer than ``min_devices`` devices.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such file (expected a CSV file of device,pulse,resistance, or a .npz)")
    sha256 = file_sha256(path)
    rows = _npz_rows(path) if path.suffix.lower() == ".npz" else _csv_rows(path)
    try:
        return _collect(rows, min_reads, min_devices, str(path), sha256)
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text file (expected a CSV file with a header line device,pulse,resistance, "
                         "or a .npz)") from None


def simulate_traces(config, lengths, *, pulses_per_update: int = 1, read_every=1, seed: int = 0,
                    backend: str = "reference"):
    """Traces of ``len(lengths)`` simulated devices, and their drawn parameters (the truth).

    One ``DeviceArray`` of the devices (the BL device of each synapse) receives
    ``pulses_per_update`` pulses per update until the longest trace is done; device i is read
    (``log_resistance``) before the first update and after every ``read_every[i]``-th update
    (an int or one per device) while its pulse count is at most ``lengths[i]``. Returns
    (Traces, {parameter: float64 array of the devices' drawn values, as ``d2d_parameters``}).
    """
    import torch

    from .array import DeviceArray

    lengths = np.asarray(lengths, dtype=np.int64)
    devices = len(lengths)
    every = np.broadcast_to(np.asarray(read_every, dtype=np.int64), (devices,))
    array = DeviceArray((devices,), config, seed=seed, backend=backend)
    truth = {k: v[0].double().numpy().copy() for k, v in array.d2d_parameters().items()}
    updates = -(-int(lengths.max()) // pulses_per_update)
    pulses, log_r = [0], [array.log_resistance()[0].double().numpy().copy()]
    step = torch.full((devices,), pulses_per_update, dtype=torch.int32)
    for _ in range(updates):
        array.apply_pulses(step)
        pulses.append(pulses[-1] + pulses_per_update)
        log_r.append(array.log_resistance()[0].double().numpy().copy())
    pulses, log_r = np.array(pulses), np.stack(log_r)
    update = np.arange(len(pulses))
    keep = [(update % every[i] == 0) & (pulses <= lengths[i]) for i in range(devices)]
    traces = Traces(tuple(f"sim{i:05d}" for i in range(devices)), tuple(pulses[k] for k in keep),
                    tuple(np.exp(log_r[k, i]) for i, k in enumerate(keep)))
    return traces, truth


def reads_at(traces: Traces, at, quantity=np.log) -> dict[int, np.ndarray]:
    """{pulse count: ln R (or ``quantity`` of R) of every device that has a read at exactly that count} for the
    counts ``at``."""
    out = {}
    for count in at:
        values = [quantity(r[np.searchsorted(t, count)]) for t, r in zip(traces.pulses, traces.resistance)
                  if np.searchsorted(t, count) < len(t) and t[np.searchsorted(t, count)] == count]
        out[int(count)] = np.array(values)
    return out


def simulate_reads(config, at, devices: int, *, seed: int = 0, backend: str = "reference") -> dict[int, np.ndarray]:
    """{pulse count: ln R of ``devices`` simulated devices at that count} for the ascending counts ``at``.

    The array jumps from one count to the next in one update: the same distribution at each count
    as one pulse per update (the RTN chain steps by T^n, the 1/f window covers the last pulses).
    """
    import torch

    from .array import DeviceArray

    array = DeviceArray((devices,), config, seed=seed, backend=backend)
    out, done = {}, 0
    for count in sorted(int(c) for c in at):
        if count > done:
            array.apply_pulses(torch.full((devices,), count - done, dtype=torch.int32))
            done = count
        out[count] = array.log_resistance()[0].double().numpy().copy()
    return out
