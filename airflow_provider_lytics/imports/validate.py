"""Record validation against the documented Lytics ingest rules, before anything is sent.

Lytics rejects records that are not JSON objects, objects nested inside arrays, records over 16 KB inside a
batch (4 KB for a single posted record) and bodies over 10 MB on the API host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Per-record limit inside a batch (bulk or a JSON array), in bytes of UTF-8.
BATCH_RECORD_LIMIT = 16 * 1024
#: Limit for a record posted on its own.
SINGLE_RECORD_LIMIT = 4 * 1024
#: Body limit of the API host; the bulk host takes large uploads.
API_HOST_BODY_LIMIT = 10 * 1024 * 1024


def structure_problem(value: Any, path: str = "") -> str | None:
    """Why ``value`` cannot be a Lytics record (None when it can): not an object, or objects/arrays in arrays."""
    if not isinstance(value, Mapping):
        kind = "array" if isinstance(value, list) else type(value).__name__
        return f"record is a JSON {kind}, not an object" if not path else f"field {path!r} is not an object"
    for key, item in value.items():
        name = f"{path}.{key}" if path else str(key)
        if isinstance(item, list):
            if any(isinstance(v, (dict, list)) for v in item):
                return f"field {name!r} nests objects or arrays inside an array, which Lytics rejects"
        elif isinstance(item, Mapping):
            problem = structure_problem(item, name)
            if problem:
                return problem
    return None


def size_problem(size: int, limit: int) -> str | None:
    if size > limit:
        return f"record is {size} bytes; Lytics accepts at most {limit} bytes per record in a batch"
    return None


def check_constants(constants: Mapping[str, Any] | None) -> dict[str, Any]:
    """Constant fields added to every record: flat, JSON-serialisable, non-empty names."""
    if not constants:
        return {}
    if not isinstance(constants, Mapping):
        raise ValueError(f"constant_fields must be a mapping of field name to value, got {type(constants).__name__}")
    out: dict[str, Any] = {}
    for key, value in constants.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"constant_fields has an empty or non-text field name: {key!r}")
        if isinstance(value, (dict, list)):
            kind = type(value).__name__
            raise ValueError(f"constant field {key!r} must be a plain value (text, number, boolean), not a {kind}")
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"constant field {key!r} is not valid Unicode text (it holds a lone surrogate such as '\\ud800'): "
                "fix the value"
            ) from None
        except (TypeError, ValueError):
            raise ValueError(f"constant field {key!r} is not JSON-serialisable: {value!r}") from None
        out[key] = value
    return out
