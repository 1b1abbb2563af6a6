import pytest


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One folder per module for the files fuzz cases write (hypothesis reuses it across cases)."""
    return tmp_path_factory.mktemp("fuzz")
