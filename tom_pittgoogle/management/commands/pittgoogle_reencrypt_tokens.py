"""Re-encrypt every stored Google token under the first key of ``PITTGOOGLE_TOKEN_ENCRYPTION_KEY``.

Key rotation: put the new key first in the setting (keeping the old ones after it), run this command, then
remove the old keys. A connection no configured key can open is marked broken (its user reconnects).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tom_pittgoogle.core.credentials import mark_broken
from tom_pittgoogle.core.tokens import InvalidToken, check_key
from tom_pittgoogle.exceptions import ConfigurationError
from tom_pittgoogle.models import GoogleConnection

UNREADABLE = "the stored tokens cannot be decrypted with any configured key"


class Command(BaseCommand):
    help = "Re-encrypt all stored Google tokens under the first PITTGOOGLE_TOKEN_ENCRYPTION_KEY."

    def handle(self, *args, **options) -> None:
        try:
            check_key()
        except ConfigurationError as error:
            raise CommandError(str(error)) from None
        reencrypted = unreadable = 0
        for pk in GoogleConnection.objects.values_list("pk", flat=True).order_by("pk"):
            with transaction.atomic():
                connection = GoogleConnection.objects.select_for_update().filter(pk=pk).first()
                if connection is None:  # disconnected meanwhile
                    continue
                try:
                    connection.reencrypt_tokens()
                except InvalidToken:
                    mark_broken(pk, UNREADABLE)
                    unreadable += 1
                    self.stderr.write(f"Connection of user {connection.user_id}: {UNREADABLE}; marked broken "
                                      "(the user reconnects).")
                    continue
                connection.save(update_fields=["access_token_encrypted", "refresh_token_encrypted", "updated_at"])
                reencrypted += 1
        self.stdout.write(f"Re-encrypted the tokens of {reencrypted} Google connection(s) under the first key; "
                          f"{unreadable} could not be read.")
        if unreadable:
            raise CommandError(f"{unreadable} connection(s) could not be decrypted with any configured key.")
