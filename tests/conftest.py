"Shared fixtures. Tests run against the installed (editable) package; `make test` installs it."
import os
os.environ.setdefault("DIFFMINE_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
