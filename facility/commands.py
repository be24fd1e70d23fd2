"""The base of the facility's management commands: `--help` speaks
FACILITY_LANGUAGE like the commands' output does. Help texts are marked with
gettext_noop where they are written (so makemessages finds them) and looked up
in the catalogue when the parser is built, when the language is known."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext


class TranslatedCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if parser.description:
            parser.description = gettext(parser.description)
        for action in parser._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                action.help = gettext(action.help)
        return parser
