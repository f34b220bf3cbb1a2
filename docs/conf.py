"""Sphinx configuration of tom-pittgoogle's documentation (MyST Markdown; ``make docs``).

autodoc imports the package for real: Django is set up with the demo TOM's settings (SQLite, no database is
opened), so the API reference shows what a TOM imports, with no mocked modules.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tom_pittgoogle.demo.tom_settings")
# The demo settings put the TOM's folder in the environment's choice or a temporary one; nothing is written there.
os.environ.setdefault("PITTGOOGLE_DEMO_DIR", str(Path(tempfile.gettempdir()) / "tom-pittgoogle-docs"))

import django  # noqa: E402

django.setup()

project = "tom-pittgoogle"
author = "Pitt-Google Broker team and contributors"
copyright = "Pitt-Google Broker team and contributors"  # noqa: A001
release = "0.2.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "command_help",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# docs/notes/ holds notes written beside code changes, to be placed into the guide; not pages yet.
exclude_patterns = ["_build", "_ext", "notes", "notes/**", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Docstrings are written for readers of the code as much as for this site: references to names that Sphinx
# cannot resolve stay plain text instead of failing the build.
nitpicky = False

html_theme = "furo"
html_title = "tom-pittgoogle"
html_static_path: list[str] = []
