from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from facility.commands import TranslatedCommand
from facility.models import PlatformClient


class Command(TranslatedCommand):
    help = gettext_noop(
        "Create a credential for a platform client (or --rotate an existing one) and print "
        "its token once. The client sends it as `Authorization: Bearer <token>`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help=gettext_noop("a name for the client, e.g. city-platform"))
        parser.add_argument(
            "--rotate",
            action="store_true",
            help=gettext_noop("replace the token of an existing client"),
        )
        parser.add_argument(
            "--token",
            help=gettext_noop(
                "use this token, not a random one (scripted set-ups; 24 characters or more)"
            ),
        )
        parser.add_argument(
            "--quiet", action="store_true", help=gettext_noop("print only the token (for scripts)")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        token: str = options["token"] or PlatformClient.new_token()
        if len(token) < 24:
            raise CommandError(_("--token must be at least 24 characters"))
        with transaction.atomic():
            client = PlatformClient.objects.filter(name=name).first()
            if client is not None and not options["rotate"]:
                raise CommandError(
                    _("client %(name)r exists; use --rotate to give it a new token")
                    % {"name": name}
                )
            if client is None:
                user = get_user_model().objects.create(username=f"platform:{name}"[:150])
                user.set_unusable_password()
                user.save()
                client = PlatformClient(name=name, user=user)
            client.set_token(token)
            client.revoked_at = None
            client.created_at = timezone.now()
            client.save()
        if options["quiet"]:
            self.stdout.write(token)
            return
        self.stdout.write(
            _("Platform client %(name)r ready. Its token (shown only now):") % {"name": name} + "\n"
        )
        self.stdout.write(token + "\n")
        self.stdout.write(_("Send it as:  Authorization: Bearer <token>   (or X-API-Key: <token>)"))
