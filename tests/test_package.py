import subprocess
import sys

import twin


def test_import_is_light():
    code = ("import sys, twin; heavy = [m for m in ('pandas', 'scipy', 'matplotlib', 'simpy', 'jax', 'optuna', "
            "'numba') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in twin.__all__:
        assert getattr(twin, name) is not None
    assert "run_replication" in twin.__all__ and "load_model" in twin.__all__
