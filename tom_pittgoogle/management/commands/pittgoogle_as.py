"""Run another management command as a TOM user, with their connected Google account.

    python manage.py pittgoogle_as alice runbrokerquery "my query"

The same as ``PITTGOOGLE_AS_USER=alice python manage.py runbrokerquery "my query"``.
"""

from __future__ import annotations

import argparse

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tom_pittgoogle.core.acting import acting_as
from tom_pittgoogle.exceptions import CredentialsError


class Command(BaseCommand):
    help = "Run a management command (e.g. runbrokerquery) using USERNAME's connected Google account."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("username", help="The TOM user whose connected Google account the command uses.")
        parser.add_argument("command_name", help="The command to run, e.g. runbrokerquery.")
        parser.add_argument("command_args", nargs=argparse.REMAINDER, help="The command's own arguments.")

    def handle(self, *args, username: str, command_name: str, command_args: list[str], **options) -> None:
        try:
            with acting_as(username):
                call_command(command_name, *command_args, stdout=self.stdout, stderr=self.stderr)
        except CredentialsError as error:
            raise CommandError(str(error)) from None
