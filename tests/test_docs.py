"""The documentation builds (Sphinx, warnings as errors, as ``make docs``), names every setting the app reads, and
the README's links into it lead somewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tom_pittgoogle import conf

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_the_docs_build_without_warnings(tmp_path):
    # A process of its own: conf.py sets up Django with the demo TOM's settings, which this session must not see.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["PITTGOOGLE_DEMO_DIR"] = str(tmp_path / "demo")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"Sphinx failed (exit {result.returncode}):\n{result.stderr[-8000:]}"
    assert (tmp_path / "html" / "index.html").is_file()
    # autodoc imported the package: the API page documents the entry points a TOM names.
    api = (tmp_path / "html" / "reference" / "api.html").read_text()
    for name in ("PittGoogleDataService", "BrokerStreamRest", "ConsumerStreamPython", "PittGoogleAlertStream",
                 "decode_alert", "create_or_update_target"):
        assert re.search(rf'id="tom_pittgoogle\.[\w.]*\b{name}"', api), f"{name} is not on the API page"


def test_the_settings_reference_names_every_setting():
    reference = (DOCS / "reference" / "settings.md").read_text()
    missing = [name for name in conf.DEFAULTS if f"`{name}`" not in reference]
    assert not missing, f"settings without an entry in docs/reference/settings.md: {missing}"


def test_the_readme_links_lead_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?:|#)[^)#\s]+)", readme)
    assert targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
