"""The standard's example request bodies (tests/contract/examples, a copy of
shared/spec/examples: repaired JSON, addresses pointed at loopback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "contract" / "examples"


def example(prefix: str) -> dict[str, Any]:
    """The example whose file name starts with `prefix`, e.g. 'I.1-d'."""
    matches = sorted(EXAMPLES.glob(f"{prefix}*.json"))
    if len(matches) != 1:
        raise LookupError(f"{prefix}: {len(matches)} example files match")
    return json.loads(matches[0].read_text(encoding="utf-8"))
