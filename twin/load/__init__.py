"""Synthetic load: arrival processes (numba kernels), workloads from load profiles, edge cases.

Arrival processes live in ``arrivals`` (checked parameters) over the kernels of ``_kernels``.
"""
