"""The ``devart.task.v1`` message contract: the JSON Schema ``packages/contracts`` publishes, and
the subset of JSON Schema (draft 2020-12) needed to check deliveries against it.

The schema file in ``schemas/`` is a copy of ``packages/contracts/schemas/devart.task.v1.json``
(generated from the zod schema ``TaskMessage``); ``tests/test_contract.py`` fails when the two
differ. A keyword this validator does not implement makes loading the schema fail, so a new rule
in the contract cannot be silently ignored here.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InvalidMessageError

__all__ = ["SchemaError", "Validator", "task_message_schema", "parse_task_message"]

SCHEMA_PATH = Path(__file__).with_name("schemas") / "devart.task.v1.json"

# Keywords that only describe (2020-12 treats "format" as an annotation by default; the uuid
# fields also carry the "pattern" zod enforces).
_ANNOTATIONS = frozenset(
    {
        "$id",
        "$schema",
        "$defs",
        "$comment",
        "title",
        "description",
        "format",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_ASSERTIONS = frozenset(
    {
        "$ref",
        "type",
        "const",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "required",
        "properties",
        "additionalProperties",
        "propertyNames",
        "items",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
    }
)


class SchemaError(Exception):
    """The schema uses something this validator does not implement."""


def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compiles an ECMA-262 pattern (what JSON Schema means) as Python ``re``.

    Two differences matter for the contract: Python's ``$`` also matches before a final newline
    (ECMA's only at the very end), and Python's ``\\d``/``\\w`` match non-ASCII digits and letters.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        # JSON Schema types by value: 1.0 is an integer (and JavaScript reads it as 1).
        return "integer" if math.isfinite(value) and value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _json_equal(a: Any, b: Any) -> bool:
    # True == 1 in Python, not in JSON.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


class Validator:
    """Checks values against one JSON Schema document (local ``$ref`` only).

    Example::

        errors = Validator(task_message_schema()).errors({"type": "devart.task.v1"})
        # ['task_id: is required', ...]
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._check_keywords(schema, "#")

    def _check_keywords(self, schema: Any, where: str) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, dict):
            raise SchemaError(f"{where}: a schema must be an object or a boolean")
        for key, sub in schema.items():
            if key not in _ANNOTATIONS and key not in _ASSERTIONS:
                raise SchemaError(f"{where}: keyword {key!r} is not implemented by this validator")
            if key in ("properties", "$defs"):
                for name, child in sub.items():
                    self._check_keywords(child, f"{where}/{key}/{name}")
            elif key in ("additionalProperties", "propertyNames", "items", "not"):
                self._check_keywords(sub, f"{where}/{key}")
            elif key in ("anyOf", "allOf", "oneOf"):
                for index, child in enumerate(sub):
                    self._check_keywords(child, f"{where}/{key}/{index}")
            elif key == "$ref" and not (isinstance(sub, str) and sub.startswith("#")):
                raise SchemaError(f"{where}: only local $ref is implemented, got {sub!r}")
            elif key == "pattern":
                self._patterns[sub] = _ecma_pattern(sub)

    def _resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.lstrip("#").split("/"):
            if part:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, value: Any) -> list[str]:
        """Every rule ``value`` breaks, as ``path: what``; empty when it is valid."""
        found: list[str] = []
        self._validate(value, self.root, "", found)
        return found

    def _validate(self, value: Any, schema: Any, path: str, found: list[str]) -> None:
        where = path or "(message)"
        if schema is True:
            return
        if schema is False:
            found.append(f"{where}: is not allowed")
            return
        if "$ref" in schema:
            self._validate(value, self._resolve(schema["$ref"]), path, found)
        kind = _type_of(value)
        if "type" in schema:
            allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            ok = kind in allowed or (kind == "integer" and "number" in allowed)
            if not ok:
                found.append(f"{where}: must be {' or '.join(allowed)}, got {kind}")
                return
        if "const" in schema and not _json_equal(value, schema["const"]):
            found.append(f"{where}: must be {json.dumps(schema['const'])}")
        if "enum" in schema and not any(_json_equal(value, v) for v in schema["enum"]):
            found.append(f"{where}: must be one of {json.dumps(schema['enum'])}")
        if kind == "string":
            if "pattern" in schema and not self._patterns[schema["pattern"]].search(value):
                found.append(f"{where}: does not match {schema['pattern']}")
            if "minLength" in schema and len(value) < schema["minLength"]:
                found.append(f"{where}: shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                found.append(f"{where}: longer than {schema['maxLength']}")
        if kind in ("integer", "number"):
            if "minimum" in schema and value < schema["minimum"]:
                found.append(f"{where}: must be at least {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                found.append(f"{where}: must be at most {schema['maximum']}")
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                found.append(f"{where}: must be above {schema['exclusiveMinimum']}")
            if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
                found.append(f"{where}: must be below {schema['exclusiveMaximum']}")
        if kind == "object":
            for name in schema.get("required", []):
                if name not in value:
                    found.append(f"{path + '.' if path else ''}{name}: is required")
            properties = schema.get("properties", {})
            for name, child in value.items():
                child_path = f"{path + '.' if path else ''}{name}"
                if "propertyNames" in schema:
                    self._validate(name, schema["propertyNames"], child_path, found)
                if name in properties:
                    self._validate(child, properties[name], child_path, found)
                elif "additionalProperties" in schema:
                    self._validate(child, schema["additionalProperties"], child_path, found)
        if kind == "array" and "items" in schema:
            for index, item in enumerate(value):
                self._validate(item, schema["items"], f"{path}[{index}]", found)
        for sub in schema.get("allOf", []):
            self._validate(value, sub, path, found)
        if "anyOf" in schema and not any(not self._sub_errors(value, s, path) for s in schema["anyOf"]):
            found.append(f"{where}: matches none of the allowed forms")
        if "oneOf" in schema:
            matches = sum(1 for s in schema["oneOf"] if not self._sub_errors(value, s, path))
            if matches != 1:
                found.append(f"{where}: must match exactly one form, matches {matches}")
        if "not" in schema and not self._sub_errors(value, schema["not"], path):
            found.append(f"{where}: matches a form that is not allowed")

    def _sub_errors(self, value: Any, schema: Any, path: str) -> list[str]:
        found: list[str] = []
        self._validate(value, schema, path, found)
        return found


@lru_cache(maxsize=1)
def task_message_schema() -> dict[str, Any]:
    """The ``devart.task.v1`` JSON Schema shipped with the SDK."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _task_message_validator() -> Validator:
    return Validator(task_message_schema())


def _refuse_constant(name: str) -> Any:
    # JavaScript's JSON.parse refuses NaN and Infinity; so does the contract.
    raise ValueError(f"{name} is not JSON")


def parse_task_message(body: bytes | str) -> dict[str, Any]:
    """Parses and checks one delivery body; returns the message with its ids lowercased (as the
    TypeScript contract makes them) and ``attempt`` an ``int``.

    Raises :class:`InvalidMessageError` naming the first rules broken. Bytes that are not UTF-8
    are decoded with replacement characters, as the TypeScript SDK does.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        message = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidMessageError(f"the body is not JSON ({error})") from None
    errors = _task_message_validator().errors(message)
    if errors:
        raise InvalidMessageError("; ".join(errors[:5]))
    message["task_id"] = message["task_id"].lower()
    if message["workflow_run_id"] is not None:
        message["workflow_run_id"] = message["workflow_run_id"].lower()
    message["attempt"] = int(message["attempt"])
    return message
