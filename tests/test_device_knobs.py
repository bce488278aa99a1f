"""HfOxWeakReset.scaled: the continuous knobs d2d, pink, rtn, t_star; the fit's bits untouched at 1; the
devices at factor 0 those of the imperfection switched off; the --scale option of rramk.train."""

import json
import math

import pytest
import torch

from rramk import DeviceArray, HfOxWeakReset
from rramk import train
import rramk.training.run_settings as run_settings
from rramk.device import model_tables
from rramk.device.config import D2D_PARAMETERS, SCALES, format_scales, parse_scales
from rramk.device.preset import PUBLISHED, load_preset, save_preset
from rramk.device.model_tables import TABLE_ROWS, _d2d_table, knob_measures, model_constants

FIT = HfOxWeakReset()
ROW = {name: i for i, name in enumerate(TABLE_ROWS)}
SWEEP = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)


def _assert_equal(a: torch.Tensor, b: torch.Tensor, what: str):
    if not torch.equal(a, b):
        bad = (a != b).nonzero()[0].tolist()
        raise AssertionError(f"{what}: differs first at index {bad}: {a[tuple(bad)]} vs {b[tuple(bad)]}")


def _fit_table_as_before(config: HfOxWeakReset) -> torch.Tensor:
    """The table as rramk built it before the knobs existed: quantiles (or means), then ln R0."""
    size = 1024
    rows = {n: getattr(config, n).quantile_table(size) if config.d2d else
            torch.full((size,), getattr(config, n).mean_truncated, dtype=torch.float64) for n in D2D_PARAMETERS}
    rows["ln_r0"] = torch.log(rows["r0"])
    return torch.stack([rows[n] for n in TABLE_ROWS])


@pytest.mark.parametrize("switches", [(), ("d2d",), ("pink", "rtn"), ("d2d", "pink", "rtn", "saturation")],
                         ids=["none", "d2d", "pink,rtn", "all"])
def test_knobs_at_one_leave_every_bit_of_the_fit(switches):
    config = FIT.only(*switches)
    ones = config.scaled(d2d=1, pink=1.0, rtn=1, t_star=1.0)
    assert ones == config and ones.scales == {} and config.scaled() == config
    _assert_equal(_d2d_table(config), _fit_table_as_before(config), "D2D table")
    for name, a, b in zip(model_tables.ModelConstants._fields, model_constants(config), model_constants(ones)):
        _assert_equal(a, b, name)
    alpha = model_constants(config, dtype=torch.float64).pink_alpha.item()
    assert alpha == (0.025 if config.pink else 0.0)


def test_d2d_at_zero_is_the_table_of_d2d_off_bit_for_bit():
    _assert_equal(_d2d_table(FIT.scaled(d2d=0)), _d2d_table(FIT.without("d2d")), "d2d x0 vs d2d off")
    assert knob_measures(FIT.scaled(d2d=0))["sigma_ln_r_0"] == 0.0 == knob_measures(FIT.without("d2d"))["sigma_m1"]


def test_d2d_spread_scales_exactly_keeps_the_mean_and_clamps_nothing():
    """Positive parameters in log space (std of ln x times s), c1 linearly, every mean kept, nothing at 0."""
    fit = _d2d_table(FIT)
    for s in SWEEP:
        table = _d2d_table(FIT.scaled(d2d=s))
        for name in D2D_PARAMETERS:
            row, mean = table[ROW[name]], getattr(FIT, name).mean_truncated
            if name == "c1":  # linear about the published mean (the fit's table mean lies 0.5 % from it)
                torch.testing.assert_close(row, mean + s * (fit[ROW[name]] - mean), rtol=0, atol=1e-15)
                continue
            if s != 1:  # the published mean after truncation, which d2d off gives every device
                assert row.mean().item() == pytest.approx(mean, rel=1e-12), f"d2d x{s}: the mean of {name} moved"
            assert (row > 0).all(), f"d2d x{s}: {name} pushed to 0 or below"
            assert torch.log(row).std().item() == pytest.approx(s * torch.log(fit[ROW[name]]).std().item(),
                                                                rel=1e-9, abs=1e-12), f"d2d x{s}: std ln {name}"
            # the order of the devices is kept: a quantile table stays a quantile table
            assert (row.diff() >= 0).all() if s > 0 else (row == mean).all()
        _assert_equal(table[ROW["ln_r0"]], torch.log(table[ROW["r0"]]), f"d2d x{s}: ln R0")
    sigma = [knob_measures(FIT.scaled(d2d=s))["sigma_ln_r_0"] for s in SWEEP]
    fit_sigma = knob_measures(FIT)["sigma_ln_r_0"]
    assert sigma == pytest.approx([s * fit_sigma for s in SWEEP], rel=1e-9)  # exactly linear now
    assert fit_sigma == pytest.approx(0.0716, abs=5e-4)  # the fit: std(ln R0) ~ 0.054, std(c1) ~ 0.047
    assert knob_measures(FIT.scaled(d2d=2))["sigma_ln_m1"] == pytest.approx(2 * knob_measures(FIT)["sigma_ln_m1"])


@pytest.mark.parametrize("knob,rows", [("d2d_r", ("r0", "c1", "ln_r0")), ("d2d_m1", ("m1",)),
                                       ("d2d_t_star", ("t_star",)), ("d2d_m2", ("m2",))])
@pytest.mark.parametrize("s", [0.0, 0.3, 2.0])
def test_a_per_parameter_knob_scales_its_own_spread_only(knob, rows, s):
    fit, table, all_d2d = _d2d_table(FIT), _d2d_table(FIT.scaled(**{knob: s})), _d2d_table(FIT.scaled(d2d=s))
    for name in TABLE_ROWS:
        expected = all_d2d[ROW[name]] if name in rows else fit[ROW[name]]
        _assert_equal(table[ROW[name]], expected, f"{knob} x{s}: row {name}")
    # factors multiply: the knob undoes the d2d knob for its parameters, bit for bit
    _assert_equal(_d2d_table(FIT.scaled(d2d=2, **{knob: 0.5}))[[ROW[n] for n in rows]],
                  fit[[ROW[n] for n in rows]], f"d2d x2, {knob} x0.5")


def test_every_spread_knob_at_zero_is_d2d_off_except_the_rtn_bound():
    off, zero = _d2d_table(FIT.without("d2d")), _d2d_table(FIT.scaled(d2d_r=0, d2d_m1=0, d2d_t_star=0, d2d_m2=0))
    keep = [ROW[n] for n in TABLE_ROWS if n != "a_rtn"]
    _assert_equal(zero[keep], off[keep], "all four spreads x0 vs d2d off")
    assert not torch.equal(zero[ROW["a_rtn"]], off[ROW["a_rtn"]])  # A_rtn's spread has only the d2d knob


def test_a_fitted_row_with_zeros_scales_linearly_and_clamps_only_there():
    from rramk.device.model_tables import scaled_spread

    row = torch.tensor([0.0, 1.0, 2.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(scaled_spread(row, 2.0, 2.0, log_space=True), torch.tensor([0.0, 0.0, 2.0, 8.0],
                                                                                         dtype=torch.float64))
    torch.testing.assert_close(scaled_spread(row, 2.0, 2.0, log_space=False), torch.tensor([-2.0, 0.0, 2.0, 8.0],
                                                                                          dtype=torch.float64))


@pytest.mark.parametrize("s", [0.0, 0.5, 2.0, 4.0])
def test_pink_rtn_and_t_star_scale_their_own_quantity_only(s):
    fit, fit32 = _d2d_table(FIT), model_constants(FIT)
    pink = model_constants(FIT.scaled(pink=s), dtype=torch.float64)
    assert pink.pink_alpha.item() == 0.025 * s
    assert model_constants(FIT.without("pink").scaled(pink=s)).pink_alpha.item() == 0.0
    _assert_equal(model_constants(FIT.scaled(pink=s)).d2d_table, fit32.d2d_table, f"pink x{s}: D2D table")
    rtn = _d2d_table(FIT.scaled(rtn=s))
    _assert_equal(rtn[ROW["a_rtn"]], fit[ROW["a_rtn"]] * s, f"rtn x{s}: A_rtn")
    keep = [ROW[n] for n in TABLE_ROWS if n != "a_rtn"]
    _assert_equal(rtn[keep], fit[keep], f"rtn x{s}: other rows")
    assert knob_measures(FIT.scaled(rtn=s))["a_rtn_max"] == fit[ROW["a_rtn"]].max().item() * s
    assert knob_measures(FIT.scaled(rtn=s))["a_rtn_max"] == pytest.approx(0.5 * s, rel=1e-3)  # Uniform(0, 0.5)
    assert knob_measures(FIT.scaled(pink=s))["alpha"] == 0.025 * s
    t_star = _d2d_table(FIT.scaled(t_star=s))
    _assert_equal(t_star[ROW["t_star"]], fit[ROW["t_star"]] * s, f"t_star x{s}")
    assert knob_measures(FIT.scaled(t_star=s))["median_t_star"] == pytest.approx(s * 515.1, rel=1e-3)


@pytest.mark.parametrize("knob,on", [("d2d", ("d2d", "saturation")), ("pink", ("pink", "saturation")),
                                     ("rtn", ("rtn", "saturation")), ("d2d", ("d2d", "pink", "rtn", "saturation"))],
                         ids=["mean+d2d", "mean+pink", "mean+rtn", "full,d2d"])
def test_factor_zero_gives_the_devices_of_the_imperfection_off(knob, on):
    """Why a sweep's factor 0 shares the runs of the configuration without the imperfection: the same
    resistances and weights, bit for bit, through a sequence of updates (RTN traps may still flip,
    with zero amplitude)."""
    shape, g = (7, 37), torch.Generator().manual_seed(0)
    scaled = DeviceArray(shape, FIT.only(*on).scaled(**{knob: 0}), seed=3, backend="reference")
    off = DeviceArray(shape, FIT.only(*on).without(knob), seed=3, backend="reference")
    for step in range(6):
        n = torch.randint(-14, 15, shape, generator=g, dtype=torch.int32)
        scaled.apply_pulses(n)
        off.apply_pulses(n)
        for side, a, b in zip(("BL", "BLb"), scaled.resistance(), off.resistance()):
            _assert_equal(a, b, f"{knob} x0, update {step}, R_{side}")
        _assert_equal(scaled.weights(), off.weights(), f"{knob} x0, update {step}, weights")


def test_scaled_refuses_what_it_cannot_mean():
    for bad in (-0.5, math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError, match="scaled: d2d: expected a finite factor >= 0"):
            FIT.scaled(d2d=bad)
    with pytest.raises(ValueError, match="unknown knob.*'alpha'.*valid names are d2d, d2d_r, d2d_m1, d2d_t_star, "
                                         "d2d_m2, d2d_pair, pink, rtn, t_star"):
        FIT.scaled(alpha=2)
    assert (_d2d_table(FIT.scaled(d2d=10))[ROW["r0"]] > 0).all()  # any spread: R0 stays a resistance
    with pytest.raises(ValueError, match="rtn_scale: expected a finite factor >= 0"):
        HfOxWeakReset(rtn_scale=-1.0)
    assert FIT.scaled(d2d=2).scaled(d2d=0.5) == FIT and FIT.scaled(pink=3).scales == {"pink": 3.0}
    assert set(SCALES) == {"d2d", "d2d_r", "d2d_m1", "d2d_t_star", "d2d_m2", "d2d_pair", "pink", "rtn", "t_star"}


def test_scales_round_trip_through_dicts_and_preset_files(tmp_path):
    config = FIT.without("pink").scaled(d2d=0.25, rtn=1.5, t_star=2)
    data = json.loads(json.dumps(config.to_dict()))
    assert (data["d2d_scale"], data["rtn_scale"], data["t_star_scale"], data["pink_scale"]) == (0.25, 1.5, 2.0, 1.0)
    assert HfOxWeakReset.from_dict(data) == config
    assert HfOxWeakReset.from_dict({k: v for k, v in FIT.to_dict().items() if not k.endswith("_scale")}) == FIT
    path = save_preset(config, tmp_path / "what_if.json")
    document = json.loads(path.read_text())
    assert document["scales"] == {"d2d": 0.25, "rtn": 1.5, "t_star": 2.0}
    assert not any(k.endswith("_scale") for k in document["parameters"])
    assert load_preset(path) == config
    assert "scales" not in json.loads(PUBLISHED.read_text()) and load_preset(PUBLISHED) == FIT


def test_parse_scales_reads_the_command_line_and_names_what_is_wrong():
    assert parse_scales("") == {} and parse_scales(" d2d=0.5 , pink=2 ") == {"d2d": 0.5, "pink": 2.0}
    assert format_scales({"pink": 2.0, "d2d": 0.5}) == "d2d=0.5,pink=2"
    assert parse_scales(format_scales({"rtn": 0.1 + 0.2})) == {"rtn": 0.1 + 0.2}
    for text, message in (("d2d", "expected name=factor"), ("d2d=", "expected name=factor"),
                          ("alpha=2", "unknown knob 'alpha'"), ("d2d=1,d2d=2", "d2d is given twice"),
                          ("rtn=x", "rtn: expected a number, got 'x'"), ("pink=-1", "expected a finite factor >= 0"),
                          ("t_star=nan", "expected a finite factor >= 0")):
        with pytest.raises(ValueError, match=f"^scale: .*{message}"):
            parse_scales(text)


def test_train_scale_option(capsys):
    settings = run_settings.RunSettings("mnist", imperfections="d2d,saturation", scale="pink=1, d2d=0.50")
    assert settings.scale == "d2d=0.5,pink=1"  # canonical: the order of SCALES, %g
    assert settings.device_config == FIT.only("d2d", "saturation").scaled(d2d=0.5)
    assert settings.out == "runs/mnist-d2d+saturation-d2d=0.5+pink=1-seed0"
    assert run_settings.RunSettings("mnist").device_config == FIT and run_settings.RunSettings("mnist").scale == ""
    for argv, message in ((["--scale", "d2d=x"], "--scale: d2d: expected a number, got 'x'"),
                          (["--scale", "alpha=1"], "--scale: unknown knob 'alpha'"),
                          (["--imperfections", "ideal", "--scale", "d2d=1"],
                           "--scale: the ideal software BNN has no device to scale"),
                          (["--scale", "d2d_m1=-1"], "--scale: d2d_m1: expected a finite factor >= 0")):
        assert train.main(["mnist", *argv, "--epochs", "0", "--no-download"]) == 2
        assert f"python -m rramk.train: error: {message}" in capsys.readouterr().err
