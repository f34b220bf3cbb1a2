"""``command-help``: a management command's ``--help``, read from its parser when the docs are built.

The commands reference shows each option as the installed command defines it, so the page cannot drift from the
code.
"""

from __future__ import annotations

from django.core.management import load_command_class
from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

#: Django's options shared by every command; the reference lists them once, not under each command.
_DJANGO_OPTIONS = ("--version", "--settings", "--pythonpath", "--traceback", "--no-color", "--force-color",
                   "--skip-checks", "-v {0,1,2,3}", "--verbosity")


class CommandHelp(Directive):
    """``{command-help} NAME``: the usage and options of ``manage.py NAME`` as a literal block."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        command = load_command_class("tom_pittgoogle", name)
        parser = command.create_parser("manage.py", name)
        parser._actions = [
            action for action in parser._actions
            if not any(flag in _DJANGO_OPTIONS for flag in action.option_strings)
        ]
        for group in parser._action_groups:
            group._group_actions = [action for action in group._group_actions if action in parser._actions]
        text = parser.format_help()
        return [nodes.literal_block(text, text, language="text")]


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_directive("command-help", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
