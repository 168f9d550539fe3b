"""Shared fixtures. Tests run against the installed (editable) package; `make test` installs it. Test doubles and test
data live in `diffmine.testing` (nbs/98_testing.ipynb)."""
import os
os.environ.setdefault("DIFFMINE_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end runs of a minute or more (make test-slow; CI runs them too)")


@pytest.fixture
def tiny_model():
    "A fresh test-size model (`diffmine.testing.tiny_model`: built once per process, copied for each test)."
    from diffmine.testing import tiny_model
    return tiny_model()


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_model):
    "The test-size model saved as a diffusers folder, `tmp_path/model`."
    from diffmine.models import save_model
    return save_model(tiny_model, tmp_path/"model")


@pytest.fixture
def noise_folder(tmp_path):
    "Write random RGB images into label folders of `tmp_path/data` (`diffmine.testing.noise_images`); their records."
    from diffmine.testing import noise_images
    return lambda labels, **kw: noise_images(tmp_path/"data", labels, **kw)
