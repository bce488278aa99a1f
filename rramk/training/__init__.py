"""Training a network on simulated devices: the loop (``loop``), its settings (``run_settings``) and data
parallelism (``distributed``).
"""
