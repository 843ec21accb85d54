"""Limits on client-supplied JSON documents (item data, field schemas).

Every store Heron runs on must hold the document exactly as sent: PostgreSQL's jsonb refuses
NUL characters, JSON has no NaN or Infinity (encoders silently turn them into null), and
integers beyond 64 bits do not survive the encoders. Depth is bounded so that no document
can exhaust a recursive encoder.
"""

from __future__ import annotations

import math
from typing import Any

from heron_common.errors import ErrorDetail, InvalidArgument

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DETAILS = 20


def json_document_problems(value: Any, path: str) -> list[ErrorDetail]:
    """Every way `value` breaks the limits, each with the dotted path of the offending part."""
    problems: list[ErrorDetail] = []
    _walk(value, path, 0, problems)
    return problems


def check_json_document(value: Any, path: str) -> None:
    problems = json_document_problems(value, path)
    if problems:
        raise InvalidArgument(f"{path} contains values that cannot be stored", problems)


def check_text(value: str, field: str) -> None:
    if "\x00" in value:
        raise InvalidArgument(
            f"{field} must not contain NUL characters", [ErrorDetail(field, "contains \\u0000")]
        )


def _walk(value: Any, path: str, depth: int, problems: list[ErrorDetail]) -> None:
    if len(problems) >= MAX_DETAILS:
        return
    if depth > MAX_DEPTH:
        problems.append(ErrorDetail(path, f"nested deeper than {MAX_DEPTH} levels"))
        return
    if isinstance(value, str):
        if "\x00" in value:
            problems.append(ErrorDetail(path, "contains \\u0000"))
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            problems.append(ErrorDetail(path, "integer outside the 64-bit range"))
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append(ErrorDetail(path, "NaN and Infinity are not JSON numbers"))
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                problems.append(ErrorDetail(path, "a key contains \\u0000"))
            _walk(item, f"{path}.{key}", depth + 1, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", depth + 1, problems)
    else:
        problems.append(ErrorDetail(path, f"unsupported value of type {type(value).__name__}"))
