"""Platform payloads as the platforms send them, from tests/fixtures/<platform>/, with the
fields a test sets filled in. A fresh copy every time."""

import json
from copy import deepcopy
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _load(platform: str, name: str) -> dict:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text(encoding="utf-8"))


def payload(platform: str, fixture: str, /, **fields) -> dict:
    """The fixture of `platform`, top-level fields replaced by `fields`."""
    return {**deepcopy(_load(platform, fixture)), **fields}
