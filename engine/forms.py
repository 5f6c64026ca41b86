"""Message forms: the fields a person fills in, and checking their answer.

A form is given as ``body`` in a JSON-schema-like shape::

    {'type': 'object',
     'properties': {'approve': {'element': 'boolean', 'label': 'Approve?', 'order': 1},
                    'comment': {'element': 'string', 'label': 'Why?', 'order': 2,
                                'default': ''}},
     'required': ['approve']}

or as the ``properties`` mapping alone. A field has ``element`` (how to show it),
``label``, ``type`` (string, number, integer, boolean; derived from ``element`` when
left out), ``default``, ``required`` (``True`` on the field, or listed in ``required``),
``order``, and optionally ``options`` (the allowed values) and ``description``.
``request='text'`` is a form with one required string field ``response``.
"""

from __future__ import annotations

import math
from typing import Any

_TYPES: dict[str, Any] = {"string": str, "number": (int, float), "integer": int, "boolean": bool}
#: The settings of a field whose type is checked: (key, accepted types, what to say).
_SETTINGS: tuple[tuple[str, Any, str], ...] = (
    ("element", str, "a string"), ("type", str, "a string"), ("label", str, "a string"),
    ("description", str, "a string"), ("required", bool, "True or False"),
    ("order", (int, float), "a number"), ("options", (list, tuple), "a list of allowed values"),
)
_TRUE, _FALSE = ("true", "yes", "y", "1", "on"), ("false", "no", "n", "0", "off")


class FormError(ValueError):
    """A form definition or an answer does not fit; the message lists every problem."""


def normalise_form(body: Any, request: str | None) -> list[dict[str, Any]] | None:
    """The form as a list of fields sorted by ``order`` (None: no answer expected)."""
    if body is None and request is None:
        return None
    if body is None:
        return [{"name": "response", "label": str(request), "type": "string", "element": "string",
                 "required": True, "order": 0}]
    properties = body.get("properties", body) if isinstance(body, dict) else None
    if not isinstance(properties, dict) or not properties:
        raise FormError("a message body must be {'type': 'object', 'properties': {name: {...}, ...}} "
                        f"or a dict of fields, not {body!r}")
    listed = body.get("required", []) if "properties" in body else []
    if not isinstance(listed, (list, tuple)) or not all(isinstance(n, str) for n in listed):
        raise FormError(f"'required' must be a list of field names, not {listed!r}")
    required = set(listed)
    if "properties" in body and not required <= set(properties):
        raise FormError(f"'required' names unknown field(s) {sorted(required - set(properties))}")
    fields = [_field(name, spec, position, name in required) for position, (name, spec) in enumerate(properties.items())]
    return sorted(fields, key=lambda f: (f["order"], f["name"]))


def _field(name: Any, spec: Any, position: int, required: bool) -> dict[str, Any]:
    if not isinstance(name, str) or not isinstance(spec, dict):
        raise FormError(f"form field {name!r} must be a name with a dict of settings, not {spec!r}")
    for key, expected, what in _SETTINGS:
        given = spec.get(key)
        if key in spec and (not isinstance(given, expected) or (key == "order" and isinstance(given, bool))):
            raise FormError(f"form field {name!r}: {key!r} must be {what}, not {given!r}")
    element = spec.get("element", spec.get("type", "string"))
    kind = spec.get("type") or (element if element in _TYPES else "string")
    if kind not in _TYPES:
        raise FormError(f"form field {name!r} has unknown type {kind!r}; use {', '.join(_TYPES)}")
    for option in spec.get("options", ()):
        if _coerce(option, kind) is None:
            raise FormError(f"form field {name!r}: option {option!r} is not {_article(kind)}")
    field = {"name": name, "label": spec.get("label", name), "type": kind, "element": element,
             "required": bool(spec.get("required")) or required, "order": spec.get("order", position)}
    for optional in ("default", "options", "description"):
        if optional in spec:
            field[optional] = spec[optional]
    if "default" in field and field["default"] is not None and _coerce(field["default"], kind) is None:
        raise FormError(f"form field {name!r}: default {field['default']!r} is not a {kind}")
    return field


def validate_response(form: list[dict[str, Any]], response: Any) -> dict[str, Any]:
    """The answer with defaults filled in and CLI strings converted to each field's type,
    or FormError naming every problem. ``None`` counts as not given."""
    if not isinstance(response, dict):
        raise FormError(f"an answer must be an object of field values, not {type(response).__name__}")
    problems, answer = [], {}
    known = {f["name"] for f in form}
    for extra in sorted(set(response) - known):
        has = f"the form has {', '.join(sorted(known))}" if known else "the message asks for no fields"
        problems.append(f"unknown field {extra!r} ({has})")
    for field in form:
        name, given = field["name"], response.get(field["name"])
        if given is None:
            if "default" in field:
                answer[name] = field["default"]
            elif field["required"]:
                problems.append(f"{name!r} ({field['label']}) is required")
            continue
        value = _coerce(given, field["type"])
        if value is None:
            problems.append(f"{name!r} must be {_article(field['type'])}, got {given!r}")
        elif "options" in field and value not in field["options"]:
            problems.append(f"{name!r} must be one of {field['options']!r}, got {value!r}")
        else:
            answer[name] = value
    if problems:
        raise FormError("; ".join(problems))
    return answer


def _article(kind: str) -> str:
    return f"an {kind}" if kind == "integer" else f"a {kind}"


def _coerce(value: Any, kind: str) -> Any:
    """``value`` as a ``kind``, accepting the CLI's strings; None when it is not one."""
    if isinstance(value, str) and kind != "string":
        text = value.strip().lower()
        if kind == "boolean":
            return True if text in _TRUE else False if text in _FALSE else None
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        value = int(number) if number.is_integer() and ("." not in text or kind == "integer") else number
    if isinstance(value, bool) and kind != "boolean":
        return None
    if kind == "integer" and isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value if isinstance(value, _TYPES[kind]) else None
