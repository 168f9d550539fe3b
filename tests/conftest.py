"Shared fixtures. Tests run against the installed (editable) package; `make test` installs it."
import os
os.environ.setdefault("DIFFMINE_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end runs of a minute or more (make test-slow; CI runs them too)")
