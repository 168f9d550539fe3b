"""Sphinx configuration of the diffmine documentation site: the executed notebooks (myst-nb) and the API reference.
`docs/build.py` (what `make docs` runs) stages the notebooks into the source folder this configuration is used on."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "diffmine"
author = "diffmine authors"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"              # build.py executes the notebooks (in nbs/, as nbdev_test does) before staging
nb_output_stderr = "remove"            # progress bars and warnings of the examples are not part of the page
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "misc.highlighting_failure", "myst.xref_missing"]
default_role = "literal"               # the docstrings' `name` is code, as in the notebooks' markdown
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "pydata_sphinx_theme"
html_title = "diffmine"
html_static_path = ["_static"]
html_js_files = ["check.js"]           # counts the images that loaded: the docs test reads it (as the gallery's does)
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_last_updated_fmt = None


def _plain_docstring(app, what, name, obj, options, lines):
    "Docstrings are plain text with `code` (nbdev style), not reST: code becomes a literal, `|` and `*` stay as typed."
    def line(l):
        parts = l.split("`")
        if len(parts) % 2 == 0: return l.replace("|", "\\|").replace("*", "\\*")       # an odd backtick: leave it
        out = []
        for i, p in enumerate(parts):
            if i % 2: out.append(f"``{p}``" + ("\\ " if i + 1 < len(parts) and parts[i + 1][:1].isalnum() else ""))
            else: out.append(p.replace("|", "\\|").replace("*", "\\*"))
        return "".join(out)
    lines[:] = [line(l) for l in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_docstring)
