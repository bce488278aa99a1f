"""Fitting a weak-RESET device to measured traces: the statistics behind ``python -m rramk.fit``.

    preset_fit    fit_preset: traces in, an ``HfOxWeakReset`` out (alternates the steps below)
    two_slope     one device's mean: the two-slope line, its knee, censoring
    pink_noise    the 1/f term: moments, correlation, the fractional order d
    rtn           random telegraph noise: a two-state hidden Markov chain over many devices
    populations   each parameter's device-to-device distribution, chosen by AIC/BIC
    recovery      known devices (DEMO_CASES) and how close a fit comes to them and to the data

Depends on ``rramk.device`` (the model fitted), never the other way round. ``rramk.fit_preset``
is ``preset_fit.fit_preset``.
"""
