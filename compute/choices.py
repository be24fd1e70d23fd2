"""Enumerations of the compute app."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CpuArch(models.TextChoices):
    """表A.2 CpuType: the standard names two architectures."""

    X86 = "x86", _("x86")
    ARM = "arm", _("arm")


# XpuType reported for a node without accelerator cards (DESIGN.md §3)
CPU_ONLY_XPU_TYPE = "CPU"
