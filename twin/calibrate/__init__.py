"""Calibration: fit the twin's distributions, key popularity and burstiness from traces."""

from .fit import Fit, TooFewSamples, fit_distribution
from .popularity import ZipfFit, dispersion_curve, fit_zipf, index_of_dispersion

__all__ = ["Fit", "TooFewSamples", "fit_distribution", "ZipfFit", "fit_zipf", "index_of_dispersion",
           "dispersion_curve"]
