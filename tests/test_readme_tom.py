"""The README's install lines, applied to a fresh TOM as ``tom_setup`` writes one, make every page work: the
ingesters' status page answers, the stored route's results have a Next page link when there are more pages, and
the query form links to the status page.

The TOM is built from TOM Toolkit's own ``tom_setup`` templates (settings.py and urls.py) after Django's
``startproject`` and ``startapp``, as ``tom_setup`` does; the README's "Using it in your TOM" section is read for
its fenced code blocks: each Python block starting ``# settings.py`` or ``# urls.py`` is appended to that file, each
``python manage.py ...`` line of a shell block is run. It runs on SQLite in a temporary folder, in processes of its
own (the TOM has its own settings)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import tom_setup
from django.template import Context, Engine

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "readme_tom"
TEMPLATES = Path(tom_setup.__file__).parent / "templates"


def install_section(readme: str) -> str:
    """The text of the README's "Using it in your TOM" section."""
    match = re.search(r"^## Using it in your TOM\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README.md has no '## Using it in your TOM' section"
    return match.group(1)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced code block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)


def readme_lines(readme: str) -> tuple[str, str, list[list[str]]]:
    """What the README adds to settings.py and urls.py, and the manage.py commands it runs."""
    settings, urls, commands = [], [], []
    for language, code in fenced_blocks(install_section(readme)):
        first = code.splitlines()[0].strip() if code.strip() else ""
        if language == "python" and first.startswith("# settings.py"):
            settings.append(code)
        elif language == "python" and first.startswith("# urls.py"):
            urls.append(code)
        elif language in ("bash", "sh", "shell"):
            for line in code.splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("python manage.py "):
                    commands.append(shlex.split(line)[2:])
    return "\n".join(settings), "\n".join(urls), commands


def render(template: str, **context) -> str:
    engine = Engine(dirs=[str(TEMPLATES)])
    return engine.get_template(f"tom_setup/{template}").render(Context(context, autoescape=False))


def run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def build_tom(base: Path, settings_lines: str, urls_lines: str, env: dict) -> None:
    """A TOM as ``tom_setup`` makes one (startproject, startapp, its settings and urls templates), plus the
    README's lines."""
    for args in (["startproject", PROJECT, str(base)], ["startapp", "custom_code"]):
        result = run([sys.executable, "-m", "django", *args], base, env)
        assert result.returncode == 0, result.stderr
    for folder in ("templates", "static", "data"):
        (base / folder).mkdir(exist_ok=True)
    context = {"PROJECT_NAME": PROJECT, "CUSTOM_CODE_APP_NAME": "custom_code", "SECRET_KEY": "readme-tom-only",
               "TARGET_TYPE": "SIDEREAL", "HINTS_ENABLED": False, "CREATE_DATE": "today", "DJANGO_VERSION": "5.2"}
    (base / PROJECT / "settings.py").write_text(render("settings.tmpl", **context) + "\n" + settings_lines)
    (base / PROJECT / "urls.py").write_text(render("urls.tmpl", **context) + "\n" + urls_lines)
    (base / "custom_code" / "models.py").write_text(render("models.tmpl", **context))


def tom_environment(base: Path) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DJANGO_SETTINGS_MODULE", "PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")}
    # This checkout's package first, then the TOM's own modules; the TOM's file cache in its folder.
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), str(base)]), TMPDIR=str(base),
               DJANGO_SETTINGS_MODULE=f"{PROJECT}.settings")
    return env


def visit_pages(readme: str, base: Path) -> dict:
    settings_lines, urls_lines, commands = readme_lines(readme)
    env = tom_environment(base)
    build_tom(base, settings_lines, urls_lines, env)
    for command in commands:
        result = run([sys.executable, "manage.py", *command], base, env)
        assert result.returncode == 0, f"manage.py {' '.join(command)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    result = run([sys.executable, str(ROOT / "tests" / "readme_tom_pages.py")], base, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("PAGES "))
    return json.loads(line.removeprefix("PAGES "))


def test_the_readme_install_section_has_settings_urls_and_migrate():
    settings_lines, urls_lines, commands = readme_lines((ROOT / "README.md").read_text())
    assert '"tom_pittgoogle"' in settings_lines and "CurrentUserMiddleware" in settings_lines
    assert 'include("tom_pittgoogle.urls")' in urls_lines
    assert ["migrate"] in commands


def test_a_tom_setup_tom_with_the_readme_lines_reaches_every_page(tmp_path):
    found = visit_pages((ROOT / "README.md").read_text(), tmp_path)
    assert found["stored"] == 5, found
    assert found["status_url"] and found["status_code"] == 200, f"the status page does not answer: {found}"
    assert found["form_code"] == 200 and found["form_links_status"], f"the form does not link the status page: {found}"
    assert found["query_code"] == 302 and found["results_code"] == 200 and found["results_rows"] == 2, found
    assert found["next_link"], f"the stored route's first page has no Next page link: {found}"
    assert found["second_page_code"] == 200 and found["second_page_number"] == 2, found
