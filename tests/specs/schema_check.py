"""A small JSON Schema checker: the draft-07 keywords the schemas in this folder use, nothing more.

`jsonschema` is not a dependency of the tests, and a checker that silently skipped a keyword would pass
anything; so an unknown keyword is an error here. `errors(instance, schema)` lists every violation as
'<path>: <problem>'; an empty list means valid.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description"}
KNOWN = ANNOTATIONS | {"type", "properties", "patternProperties", "additionalProperties", "required", "items",
                       "minItems", "maxItems", "propertyNames", "minLength", "maxLength", "pattern", "enum"}


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, which Python accepts and JSON (RFC 8259) does not."""
    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    raise ValueError(f"type {kind!r} is not supported by this checker")


def errors(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"{path}: keyword(s) {sorted(unknown)} not supported by this checker")
    out: list[str] = []
    kinds = schema.get("type")
    if kinds is not None and not any(_is_type(instance, k) for k in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{path}: expected {kinds}, got {type(instance).__name__} {instance!r:.60}"]
    if "enum" in schema and instance not in schema["enum"]:
        out.append(f"{path}: {instance!r:.60} is not one of {schema['enum']}")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            out.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            out.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            out.append(f"{path}: {instance!r:.60} does not match {schema['pattern']}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            out.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            out.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                out += errors(item, schema["items"], f"{path}[{i}]")
    if isinstance(instance, dict):
        for key in schema.get("required", ()):
            if key not in instance:
                out.append(f"{path}: required {key!r} missing")
        for key, value in instance.items():
            where = f"{path}[{key!r}]"
            if "propertyNames" in schema:
                out += [f"{where} (name): {e.partition(': ')[2]}" for e in errors(key, schema["propertyNames"], where)]
            matched = False
            if key in schema.get("properties", {}):
                matched = True
                out += errors(value, schema["properties"][key], where)
            for pattern, sub in schema.get("patternProperties", {}).items():
                if re.search(pattern, key):
                    matched = True
                    out += errors(value, sub, where)
            if not matched and schema.get("additionalProperties", True) is False:
                out.append(f"{where}: property not allowed")
    return out
