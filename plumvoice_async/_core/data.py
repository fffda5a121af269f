"""Models as data: every model to JSON-ready builtins and back (``to_dict`` / ``from_dict``).

The wire converter (``convert.py``) reads what Plum sends, quirks and all; this one writes
and reads *our* form of the same models, for files, queues and databases, with one spelling
for everything so that ``json.dumps(model.to_dict())`` always works and
``Model.from_dict(model.to_dict()) == model``:

- field names are the models' own (``event_class``, not the wire's ``class``);
- instants are ISO 8601 in UTC ending in ``Z`` (``2024-01-31T09:30:00Z``), dates
  ``YYYY-MM-DD``, enums their values, mappings keyed by instants keyed by those strings;
- everything else is already a JSON builtin (``CallEvent.data`` is kept as the server sent it).

``from_dict`` refuses what it cannot read with ``InvalidParameterError`` naming the path of
the first bad field (a naive instant is refused, as everywhere in this package).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

import cattrs

from .._errors import InvalidParameterError

__all__ = ["from_data", "iso_utc", "to_data"]

T = TypeVar("T")


def iso_utc(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with ``Z``: one spelling for every instant written."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _instant(value: object, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"an ISO 8601 instant is a string, not {type(value).__name__}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no zone: its instant is ambiguous")
    return moment.astimezone(UTC)


def _day(value: object, _: type) -> date:
    if not isinstance(value, str):
        raise TypeError(f"a date is a YYYY-MM-DD string, not {type(value).__name__}")
    return date.fromisoformat(value)


_converter = cattrs.Converter()
_converter.register_unstructure_hook(datetime, iso_utc)
_converter.register_structure_hook(datetime, _instant)
_converter.register_unstructure_hook(date, date.isoformat)
_converter.register_structure_hook(date, _day)
# A StrEnum is also a str, whose hook passes the member itself through: write its value, a
# plain str (StrEnum precedes str in the members' MRO, so this hook is the one chosen).
_converter.register_unstructure_hook(StrEnum, lambda member: member.value)


def to_data(model: object) -> dict[str, Any]:
    """``model`` as JSON-ready builtins (see the module docstring for the spelling)."""
    data: dict[str, Any] = _converter.unstructure(model)
    return data


def from_data(data: Mapping[str, Any], model: type[T]) -> T:
    """Rebuild a ``model`` from what ``to_data`` made of one.

    Raises:
        InvalidParameterError: ``data`` is not a mapping of that model's shape; the message
            names the first bad field's path (``$.calls[0].start``).
    """
    if not isinstance(data, Mapping):
        raise InvalidParameterError("data", type(data).__name__, "a model's data is a mapping")
    try:
        return _converter.structure(data, model)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc)
        raise InvalidParameterError(
            "data", f"<{model.__name__} data>", "; ".join(problems[:3])
        ) from None
