"""reports/technologies_<dataset>_<budget>.md: each technology's published ablation side by side, read from the
answers each technology's own report gives (rramk.reporting.technologies)."""

from __future__ import annotations

import math

from rramk.reporting.technologies import technology_of, write_technologies


def _cost(x, added, added_ci, removed=math.nan, removed_ci=math.nan):
    return {"imperfection": x, "added": added, "added_ci": added_ci, "removed": removed, "removed_ci": removed_ci}


def test_budget_names_give_the_technology():
    assert technology_of("epochs20-val10000") == ("epochs20-val10000", "hfox_ted2021")
    assert technology_of("epochs20-val10000-preset-ecram_tang2018-0123abcd") == ("epochs20-val10000", "ecram_tang2018")
    assert technology_of("epochs20-val10000-preset-my-dev-2-ffffffff") == ("epochs20-val10000", "my-dev-2")


def test_one_table_per_budget_with_two_technologies(tmp_path):
    hfox = {"dataset": "mnist", "budget": "epochs20-val10000", "variant": "_lr8", "file": "a.md", "seeds": [5],
            "costs": [_cost("d2d", 0.016, 0.002, 0.005, 0.001), _cost("pink", 0.001, 0.002, 0.0, 0.001),
                      _cost("rtn", 0.002, 0.001, 0.001, 0.002)]}
    tuned = dict(hfox, variant="_tuned", file="tuned.md")  # another rate choice: not compared
    sb = {"dataset": "mnist", "budget": "epochs20-val10000-preset-reram_sb_gong2018-706f7027", "variant": "",
          "file": "b.md", "seeds": [5], "costs": [_cost("d2d", 0.05, 0.01, 0.02, 0.01), _cost("pink", 0.03, 0.04),
                                                   _cost("rtn", math.nan, math.nan)]}
    alone = {"dataset": "mnist", "budget": "epochs1-n300-val10000", "variant": "", "file": "c.md", "seeds": [1],
             "costs": hfox["costs"]}
    entries = write_technologies(tmp_path, [hfox, tuned, sb, alone])
    assert [e[0] for e in entries] == ["technologies_mnist_epochs20-val10000.md"]  # one technology alone: no table
    text = (tmp_path / entries[0][0]).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| hfox") or line.startswith("| reram")]
    assert rows[0].startswith("| hfox_ted2021 ") and rows[1].startswith("| reram_sb_gong2018 ")  # the fit first
    assert "+1.60 ± 0.20" in rows[0] and "[a.md](a.md)" in rows[0] and "tuned.md" not in text
    assert "+0.10 ± 0.20, not resolved" in rows[0]  # pink added: its interval holds 0
    assert "not in this device" in rows[1] and "+3.00 ± 4.00, not resolved" in rows[1]
    cells = [c.strip() for c in rows[1].split("|")]
    assert cells[-4:-2] == ["d2d", "d2d"]  # costliest in both views, resolved


def test_the_ablation_report_speaks_of_each_familys_own_mean_and_saturation():
    """The framing and the saturation section name what the device family has (HfOx: two slopes and m2 = m1;
    soft bounds: its bound; bidirectional: its bounds), and the family line names a family that is not HfOx."""
    from rramk.reporting import ablation as report

    def runs(family):
        config = {} if family is None else {"device_family": family}
        return {"ideal": [{"settings": {"imperfections": "ideal"}}],
                "all": [{"settings": {"imperfections": "all"}, "device_config": config}]}

    assert report.family_of_runs(runs(None)) == "HfOxWeakReset"  # HfOx dicts name no family
    assert report._words(runs(None))["mean"] == "the mean parameters and both slopes"
    assert "m2 = m1" in report._words(runs(None))["saturation"]
    assert report._words(runs("SoftBounds"))["mean"] == "the mean parameters and its soft bound"
    assert "slope" not in report._words(runs("SoftBounds"))["saturation"]
    assert "unbounded" in report._words(runs("Bidirectional"))["saturation"]
    assert report._family_line("HfOxWeakReset") == []
    assert report._family_line("SoftBounds")[0].startswith("- Device family: SoftBounds (saturation = the soft bound")
