"""Triton kernels of rramk, installed as ``rramk.kernels`` (never as a top-level ``kernels``)."""
