"""Bootstrap for the demo TOM's pages without the internet: fetched once, served from the demo's static files.

TOM Toolkit's pages load Bootstrap from a CDN (django-bootstrap5's default), so offline the demo and the browser
test's screenshots are unstyled. ``python -m tom_pittgoogle.demo.assets`` (``make demo`` runs it) fetches the
version TOM Toolkit uses with ``npm pack`` into :data:`DEMO_STATIC` (git-ignored); when the files are there the
demo's settings serve them (:func:`bootstrap5_settings`), else the pages keep the CDN's links. Only the demo
and the test TOM use this; a TOM of your own loads Bootstrap as TOM Toolkit set it up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: Where the fetched files live: ``.cache/demo-static`` in the checkout (or ``$PITTGOOGLE_DEMO_STATIC``).
DEMO_STATIC = Path(os.environ.get("PITTGOOGLE_DEMO_STATIC")
                   or Path(__file__).resolve().parents[2] / ".cache" / "demo-static")
#: The files the pages load, as (path in the npm package, path under DEMO_STATIC).
BOOTSTRAP_FILES = {
    "package/dist/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
    "package/dist/js/bootstrap.bundle.min.js": "bootstrap/js/bootstrap.bundle.min.js",
}


def bootstrap_version() -> str:
    """The Bootstrap version TOM Toolkit's pages load: the one in django-bootstrap5's CDN link."""
    from django_bootstrap5.core import BOOTSTRAP5_DEFAULTS

    return BOOTSTRAP5_DEFAULTS["css_url"]["url"].split("bootstrap@", 1)[1].split("/", 1)[0]


def bootstrap5_settings(static_url: str, folder: Path = DEMO_STATIC) -> dict | None:
    """django-bootstrap5's ``BOOTSTRAP5`` setting serving the fetched files, or None (keep the CDN) without them."""
    if not all((folder / path).is_file() for path in BOOTSTRAP_FILES.values()):
        return None
    return {
        "css_url": {"url": f"{static_url}{BOOTSTRAP_FILES['package/dist/css/bootstrap.min.css']}"},
        "javascript_url": {"url": f"{static_url}{BOOTSTRAP_FILES['package/dist/js/bootstrap.bundle.min.js']}"},
    }


def fetch_bootstrap(folder: Path = DEMO_STATIC, version: str | None = None) -> str:
    """Fetch Bootstrap's files into ``folder`` with ``npm pack`` (nothing when they are there); a sentence saying
    what happened. Never raises for a missing npm or network: the pages then load Bootstrap from the CDN."""
    if bootstrap5_settings("/", folder) is not None:
        return f"Bootstrap is in {folder}."
    version = version or bootstrap_version()
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found: the demo's pages load Bootstrap from its CDN (unstyled offline)."
    with tempfile.TemporaryDirectory() as scratch:
        try:
            packed = subprocess.run([npm, "pack", f"bootstrap@{version}", "--pack-destination", scratch],
                                    capture_output=True, text=True, timeout=300, check=True)
        except (subprocess.SubprocessError, OSError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            return (f"could not fetch Bootstrap {version} with npm ({detail.strip().splitlines()[-1:]}): the demo's "
                    "pages load it from its CDN.")
        tarball = Path(scratch) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            for member, target in BOOTSTRAP_FILES.items():
                source = archive.extractfile(member)
                if source is None:
                    return f"Bootstrap {version}'s package has no {member}: the demo's pages load it from its CDN."
                (folder / target).parent.mkdir(parents=True, exist_ok=True)
                (folder / target).write_bytes(source.read())
    return f"Fetched Bootstrap {version} into {folder}."


if __name__ == "__main__":
    print(fetch_bootstrap())
    sys.exit(0)
