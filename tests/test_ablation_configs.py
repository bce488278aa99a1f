"""rramk.ablation_configs: the one registry of the study's configurations, and one test over it."""

import json
from pathlib import Path

from rramk import ablation, characterize
from rramk.ablation_configs import ABLATIONS, CHARACTERIZED, label_of
from rramk.device.config import IMPERFECTIONS, HfOxWeakReset

REPORTS = Path(__file__).resolve().parents[1] / "reports"
LABELS = ["ideal", "none", "all", "only d2d", "only pink", "only rtn", "only saturation", "all but d2d",
          "all but pink", "all but rtn", "all but saturation"]  # as the committed reports name them


def _device_the_label_names(label: str) -> HfOxWeakReset | None:
    if label == "ideal":
        return None
    on = {"none": set(), "all": set(IMPERFECTIONS)}.get(label)
    if label.startswith("only "):
        on = {label.removeprefix("only ")}
    if label.startswith("all but "):
        on = set(IMPERFECTIONS) - {label.removeprefix("all but ")}
    return HfOxWeakReset(**{name: name in on for name in IMPERFECTIONS})


def test_every_configuration_is_the_device_its_label_names():
    assert list(ABLATIONS) == LABELS
    for label, config in ABLATIONS.items():
        assert config.label == label
        assert config.device() == _device_the_label_names(label), label
        assert config.slug == label.replace(" ", "-") and label_of(config.slug) == label
    assert label_of("not-a-config") == "not-a-config"
    assert ablation.CONFIGS == {label: c.flag for label, c in ABLATIONS.items()}
    assert ablation.CONFIGS["all but d2d"] == "pink,rtn,saturation" and ablation.CONFIGS["only rtn"] == "rtn"


def test_committed_runs_trained_the_device_of_their_configuration():
    """rramk.train's reading of each flag, as recorded by the committed runs, is the registry's device."""
    summaries = sorted((REPORTS / "ablation" / "summaries").glob("*/*/*/seed*/summary.json"))
    assert len(summaries) >= 2 * 3 * len(ABLATIONS)  # the short and the full MNIST study, 3 seeds each
    for path in summaries:
        label = label_of(path.parents[1].name)
        assert label in ABLATIONS, path
        summary = json.loads(path.read_text())
        assert summary["imperfections"] == ABLATIONS[label].flag, path
        trained = summary["device_config"] and HfOxWeakReset.from_dict(summary["device_config"])
        assert trained == ABLATIONS[label].device(), path


def test_the_characterization_simulates_the_full_model_and_each_imperfection_off():
    assert [c.caption for c in CHARACTERIZED] == ["full model", *(f"no {name}" for name in IMPERFECTIONS)]
    assert characterize.configurations() == {"full model": HfOxWeakReset(),
                                             **{f"no {n}": HfOxWeakReset().without(n) for n in IMPERFECTIONS}}
    for caption in characterize.configurations():  # the committed figures carry the captions
        assert (REPORTS / "characterization" / f"cycling_{characterize.slug(caption)}.png").is_file(), caption
