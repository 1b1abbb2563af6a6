"""twin: shadow a live distributed application with a calibrated SimPy twin.

``import twin`` is light: the heavy parts (pandas, scipy, matplotlib; later jax, optuna, numba)
load when first used.

>>> import twin
>>> model = twin.load_model("models/validation/mm1.yaml")
>>> model.services["server"].workers
1
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "twin.spec", "SystemModel": "twin.spec", "TwinError": "twin.spec", "SpecError": "twin.spec",
    "apply_params": "twin.spec", "apply_overrides": "twin.spec",
    "run_replication": "twin.sim", "run_replications": "twin.sim", "summarize": "twin.sim",
    "PoissonArrivals": "twin.sim", "Workload": "twin.sim", "WorkloadSource": "twin.sim",
    "ReplicationResult": "twin.sim", "Summary": "twin.sim",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'twin' has no attribute {name!r}")
