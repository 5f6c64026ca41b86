"""Message forms: the fields a person fills in, and checking their answer.

A form is given as ``body`` in a JSON-schema-like shape::

    {'type': 'object',
     'properties': {'approve': {'element': 'boolean', 'label': 'Approve?', 'order': 1},
                    'comment': {'element': 'string', 'label': 'Why?', 'order': 2,
                                'default': ''}},
     'required': ['approve']}

(a property may also say ``'required': True``), or as ``request='text'``: one
required string field ``response`` labelled with the text.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"string": str, "number": (int, float), "integer": int, "boolean": bool}


class FormError(ValueError):
    """A form definition or an answer does not fit; the message lists every problem."""


def normalise_form(body: Any, request: str | None) -> list[dict[str, Any]] | None:
    """The form as a list of fields sorted by ``order`` (None: no answer expected)."""
    if body is None and request is None:
        return None
    if body is None:
        return [{"name": "response", "label": str(request), "type": "string", "element": "string",
                 "required": True, "order": 0}]
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict) or not body["properties"]:
        raise FormError("a message body must be {'type': 'object', 'properties': {name: {...}, ...}}")
    required = set(body.get("required", []))
    fields = []
    for position, (name, spec) in enumerate(body["properties"].items()):
        if not isinstance(spec, dict):
            raise FormError(f"form field {name!r} must be a dict, not {spec!r}")
        element = spec.get("element", spec.get("type", "string"))
        kind = spec.get("type") or ("boolean" if element == "boolean" else "number" if element == "number" else "string")
        if kind not in _TYPES:
            raise FormError(f"form field {name!r} has unknown type {kind!r}; use {', '.join(_TYPES)}")
        field = {"name": name, "label": spec.get("label", name), "type": kind, "element": element,
                 "required": bool(spec.get("required")) or name in required, "order": spec.get("order", position)}
        for optional in ("default", "options", "description"):
            if optional in spec:
                field[optional] = spec[optional]
        fields.append(field)
    return sorted(fields, key=lambda f: (f["order"], f["name"]))


def validate_response(form: list[dict[str, Any]], response: Any) -> dict[str, Any]:
    """The answer with defaults filled in, or FormError naming every problem."""
    if not isinstance(response, dict):
        raise FormError(f"an answer must be an object of field values, not {type(response).__name__}")
    problems, answer = [], {}
    known = {f["name"] for f in form}
    for extra in sorted(set(response) - known):
        problems.append(f"unknown field {extra!r} (the form has {', '.join(sorted(known))})")
    for field in form:
        name = field["name"]
        if name not in response:
            if "default" in field:
                answer[name] = field["default"]
            elif field["required"]:
                problems.append(f"{name!r} ({field['label']}) is required")
            continue
        value = _coerce(response[name], field["type"])
        if value is None and response[name] is not None:
            problems.append(f"{name!r} must be a {field['type']}, got {response[name]!r}")
            continue
        if "options" in field and value not in field["options"]:
            problems.append(f"{name!r} must be one of {field['options']!r}, got {value!r}")
            continue
        answer[name] = value
    if problems:
        raise FormError("; ".join(problems))
    return answer


def _coerce(value: Any, kind: str) -> Any:
    """Accept the CLI's strings for numbers and booleans."""
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "y", "1", "false", "no", "n", "0"):
            return value.lower() in ("true", "yes", "y", "1")
        return None
    if kind in ("number", "integer") and isinstance(value, str):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return None
    if kind == "integer" and isinstance(value, bool):
        return None
    return value if isinstance(value, _TYPES[kind]) else None
