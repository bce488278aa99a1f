"""The report files in reports/: the ablation (``ablation``), the sweeps (``sweeps``), speed (``speed``),
refresh (``refresh``) and the index (``index``), what they share (``files``, ``runs``).
"""
