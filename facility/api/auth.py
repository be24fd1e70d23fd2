"""The platform's credential: a bearer token created by
`manage.py create_platform_client`, sent as `Authorization: Bearer <token>`
or `X-API-Key: <token>`. Only a SHA-256 of the token is stored."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from facility.models import PlatformClient


def token_from(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.META.get("HTTP_X_API_KEY", "").strip()
    return key or None


class PlatformTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, PlatformClient] | None:
        token = token_from(request)
        if token is None:
            return None
        client = PlatformClient.objects.active().by_token(token)
        if client is None:
            raise exceptions.AuthenticationFailed(_("the credential is unknown or revoked"))
        now = timezone.now()
        # touch at most once a minute: a write per request would serialise
        # every call on SQLite
        if client.last_used_at is None or (now - client.last_used_at).total_seconds() > 60:
            PlatformClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return client.user, client

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="facility"'
