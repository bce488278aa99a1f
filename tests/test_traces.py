"""Measured traces: the CSV/NPZ reader, its one-line errors, and simulated traces."""

import numpy as np
import pytest
import torch

from rramk import HfOxWeakReset
from rramk.device.traces import TraceError, Traces, file_sha256, read_traces, simulate_traces

SMALL = dict(min_reads=3, min_devices=2)


def write(tmp_path, text: str, name="traces.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """# two devices, interleaved rows
pulse,device,resistance,temperature
0,A,7000,300
0,B,6900.5,300
5,A,7100,300
10,A,7200,300
4,B,7010,300
9,B,7050,300
"""


def test_reads_csv_in_any_column_order(tmp_path):
    path = write(tmp_path, GOOD)
    traces = read_traces(path, **SMALL)
    assert traces.devices == ("A", "B")
    assert traces.pulses[0].tolist() == [0, 5, 10] and traces.pulses[1].tolist() == [0, 4, 9]
    assert traces.resistance[1].tolist() == [6900.5, 7010.0, 7050.0]
    assert traces.reads == 6 and len(traces) == 2
    assert traces.sha256 == file_sha256(path) and len(traces.sha256) == 64
    assert np.allclose(traces.log_resistance(0), np.log([7000, 7100, 7200]))


def test_csv_round_trip_and_npz(tmp_path):
    traces = read_traces(write(tmp_path, GOOD), **SMALL)
    again = read_traces(traces.write_csv(tmp_path / "again.csv"), **SMALL)
    assert again.devices == traces.devices
    assert all(np.array_equal(a, b) for a, b in zip(again.resistance, traces.resistance))
    npz = tmp_path / "traces.npz"
    np.savez(npz, device=np.array(["A", "A", "A", "B", "B", "B"]), pulse=np.array([0, 5, 10, 0, 4, 9]),
             resistance=np.array([7000, 7100, 7200, 6900.5, 7010, 7050.0]))
    from_npz = read_traces(npz, **SMALL)
    assert from_npz.devices == ("A", "B") and from_npz.pulses[1].tolist() == [0, 4, 9]


@pytest.mark.parametrize("text,message", [
    ("", "empty file"),
    ("device,pulses,resistance\nA,0,1\n", "the header lacks column.s. pulse "),
    ("device,pulse,resistance\nA,0,7000\nA,1\n", "^line 3: 2 value.s., expected 3"),
    ("device,pulse,resistance\nA,0,7000\nA,3,\n", "^line 3: missing resistance"),
    ("device,pulse,resistance\n,0,7000\n", "^line 2: missing device"),
    ("device,pulse,resistance\nA,zero,7000\n", "^line 2: pulse 'zero' is not a number"),
    ("device,pulse,resistance\nA,1.5,7000\n", r"^line 2: pulse '1.5' is not an integer >= 0"),
    ("device,pulse,resistance\nA,-1,7000\n", r"^line 2: pulse '-1' is not an integer >= 0"),
    ("device,pulse,resistance\nA,0,7k\n", "^line 2: resistance '7k' is not a number"),
    ("device,pulse,resistance\nA,0,nan\n", "^line 2: resistance 'nan' is not a resistance"),
    ("device,pulse,resistance\nA,0,-7000\n", r"^line 2: resistance '-7000' is not a resistance \(expected a finite "
                                             r"value > 0 ohm\)"),
    ("device,pulse,resistance\nA,0,0\n", "^line 2: resistance '0' is not a resistance"),
    ("device,pulse,resistance\nA,0,7000\nB,0,7000\nA,5,7100\nA,3,7050\n",
     r"^line 5: device 'A': pulse 3 after pulse 5 \(line 4\); pulse counts must increase within a device"),
    ("device,pulse,resistance\nA,0,7000\nA,5,7100\nA,5,7100\n",
     r"^line 4: device 'A' has a second read at pulse 5 \(first at line 3\)"),
    ("device,pulse,resistance\nA,0,7000\nA,1,7000\nA,2,7000\nB,0,7000\nB,1,7000\n",
     r"^device 'B': 2 reads, too few to fit \(at least 3 needed\)"),
    ("device,pulse,resistance\nA,0,7000\nA,1,7000\nA,2,7000\n",
     r"^1 device\(s\), too few to estimate a device-to-device distribution \(at least 2 needed\)"),
], ids=["empty", "header", "short-row", "missing-value", "missing-device", "non-numeric-pulse", "fractional-pulse",
        "negative-pulse", "non-numeric-resistance", "nan-resistance", "negative-resistance", "zero-resistance",
        "decreasing", "duplicate", "too-few-reads", "too-few-devices"])
def test_bad_csv_gets_one_line_naming_row_or_device(tmp_path, text, message):
    with pytest.raises(TraceError, match=message) as info:
        read_traces(write(tmp_path, text), **SMALL)
    assert "\n" not in str(info.value)


def test_bad_npz_names_the_entry(tmp_path):
    npz = tmp_path / "t.npz"
    np.savez(npz, device=np.array(["A", "A"]), pulse=np.array([0.0, np.nan]), resistance=np.array([1.0, 2.0]))
    with pytest.raises(TraceError, match="^entry 1: missing pulse"):
        read_traces(npz, **SMALL)
    np.savez(npz, device=np.array(["A"]), pulse=np.array([0]))
    with pytest.raises(TraceError, match="lacks array.s. resistance"):
        read_traces(npz, **SMALL)


def test_missing_file(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        read_traces(tmp_path / "nope.csv")


def test_default_minimums(tmp_path):
    rows = "".join(f"A,{t},{7000 + t}\n" for t in range(29))
    with pytest.raises(TraceError, match=r"^device 'A': 29 reads, too few to fit \(at least 30 needed\)"):
        read_traces(write(tmp_path, "device,pulse,resistance\n" + rows))


def test_simulated_traces_are_what_the_array_reads():
    """Unequal lengths and read spacings; every read is ln R of the array at that pulse count."""
    cfg = HfOxWeakReset()
    traces, truth = simulate_traces(cfg, lengths=[12, 30, 7], pulses_per_update=2, read_every=[1, 3, 1], seed=5)
    assert traces.pulses[0].tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert traces.pulses[1].tolist() == [0, 6, 12, 18, 24, 30]
    assert traces.pulses[2].tolist() == [0, 2, 4, 6]
    from rramk import DeviceArray

    array = DeviceArray((3,), cfg, seed=5, backend="reference")
    assert torch.allclose(torch.tensor(truth["m1"]), array.d2d_parameters()["m1"][0].double())
    expected = [array.log_resistance()[0, 1].item()]
    for _ in range(15):
        array.apply_pulses(torch.full((3,), 2, dtype=torch.int32))
        expected.append(array.log_resistance()[0, 1].item())
    assert np.allclose(traces.log_resistance(1), expected[::3], rtol=0, atol=1e-6)
    assert traces.source is None and isinstance(traces, Traces)
