"""The JSON Schema of a pathway document: its shape. Meaning is checked in `validation`."""

from __future__ import annotations

from typing import Any

# The event the engine fires when the last open task of a state is done.
TASKS_COMPLETED = "tasks_completed"

STATE_NAME = r"^[a-z][a-z0-9_]{0,62}$"
EVENT_NAME = r"^[a-z][a-z0-9_]{0,62}$"
ROLE_NAME = r"^[a-z][a-z0-9_-]{0,62}$"
TASK_CODE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
PATHWAY_KEY = r"^[a-z0-9][a-z0-9-]{0,63}$"
PRIORITIES = ["routine", "urgent", "asap", "stat"]
# A LOINC code, or a local code of patients.measurements: lower-case words joined by "-"
# (hf-dyspnoea).
LOINC_CODE = r"^([0-9]{1,7}-[0-9]|[a-z][a-z0-9]{0,19}(-[a-z0-9]{1,19}){1,3})$"
PARAMETER_NAME = r"^[a-z][a-z0-9_]{0,62}$"

_text: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": 500},
        {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-z]{2}$"},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 500},
            "minProperties": 1,
        },
    ]
}
_long_text: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "maxLength": 5000},
        {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-z]{2}$"},
            "additionalProperties": {"type": "string", "maxLength": 5000},
        },
    ]
}
_duration: dict[str, Any] = {"type": "string", "minLength": 2, "maxLength": 40}
_expression: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 2000}

PATHWAY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["key", "version", "title", "roles", "initial", "states"],
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": PATHWAY_KEY},
        "version": {"type": "integer", "minimum": 1},
        "title": _text,
        "description": _long_text,
        "roles": {
            "type": "array",
            "items": {"type": "string", "pattern": ROLE_NAME},
            "uniqueItems": True,
        },
        # How each role reads in the pathway's languages (`nurse: {fr: ..., en: ...}`).
        "role_titles": {
            "type": "object",
            "propertyNames": {"pattern": ROLE_NAME},
            "additionalProperties": _text,
        },
        "initial": {"type": "string"},
        "allow_concurrent": {"type": "boolean"},
        "monitoring": {"$ref": "#/$defs/monitoring"},
        "timers": {"type": "array", "maxItems": 20, "items": {"$ref": "#/$defs/pathway_timer"}},
        "references": {
            "type": "array",
            "maxItems": 50,
            "items": {"$ref": "#/$defs/reference"},
        },
        "states": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": STATE_NAME},
            "additionalProperties": {"$ref": "#/$defs/state"},
        },
    },
    "$defs": {
        "state": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "title": _text,
                "description": _long_text,
                "final": {"type": "boolean"},
                "on_enter": {"type": "array", "items": {"$ref": "#/$defs/action"}},
                "alerts": {"type": "array", "items": {"$ref": "#/$defs/alert"}},
                "expects": {"type": "array", "items": {"$ref": "#/$defs/expectation"}},
                "suspends": {"type": "array", "items": {"$ref": "#/$defs/suspension"}},
                "on": {
                    "type": "object",
                    "propertyNames": {"pattern": EVENT_NAME},
                    "additionalProperties": {"$ref": "#/$defs/transition"},
                },
            },
        },
        "action": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {
                "task": {"$ref": "#/$defs/task"},
                "timer": {"$ref": "#/$defs/timer"},
            },
            "additionalProperties": False,
        },
        "task": {
            "type": "object",
            "required": ["code", "title", "role"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": TASK_CODE},
                "title": _text,
                "description": _long_text,
                "role": {"type": "string", "pattern": ROLE_NAME},
                "due": _duration,
                "priority": {"enum": PRIORITIES},
                "escalate_to": {"type": "string", "pattern": ROLE_NAME},
            },
        },
        "timer": {
            "type": "object",
            "required": ["event", "after"],
            "additionalProperties": False,
            "properties": {
                "event": {"type": "string", "pattern": EVENT_NAME},
                "after": _duration,
                "title": _text,
            },
        },
        "alert": {
            "type": "object",
            "required": ["name", "when"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": TASK_CODE},
                "title": _text,
                "when": _expression,
                "event": {"type": "string", "pattern": EVENT_NAME},
                "priority": {"enum": PRIORITIES},
                "role": {"type": "string", "pattern": ROLE_NAME},
                "score": {"$ref": "#/$defs/score"},
                "description": _long_text,
                "escalate_to": {"type": "string", "pattern": ROLE_NAME},
            },
        },
        "expectation": {
            "type": "object",
            "required": ["code", "every", "role"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": TASK_CODE},
                "code": {"type": "string", "pattern": LOINC_CODE},
                "every": _duration,
                "role": {"type": "string", "pattern": ROLE_NAME},
                "title": _text,
                "priority": {"enum": PRIORITIES},
                "score": {"$ref": "#/$defs/score"},
            },
        },
        "score": {
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": 100},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 20,
                    "items": {
                        "type": "object",
                        "required": ["points"],
                        "additionalProperties": False,
                        "properties": {
                            "when": _expression,
                            "points": {"type": "integer", "minimum": 0, "maximum": 100},
                            "title": _text,
                        },
                    },
                },
            ]
        },
        "suspension": {
            "type": "object",
            "required": ["name", "reason"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": TASK_CODE},
                "reason": _text,
            },
        },
        "parameter": {
            "type": "object",
            "required": ["default", "minimum", "maximum"],
            "additionalProperties": False,
            "properties": {
                "title": _text,
                "description": _long_text,
                "default": {"type": "number"},
                "minimum": {"type": "number"},
                "maximum": {"type": "number"},
                "unit": {"type": "string", "minLength": 1, "maxLength": 20},
                "roles": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": ROLE_NAME},
                    "uniqueItems": True,
                },
            },
        },
        "monitoring": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "measurements": {
                    "type": "array",
                    "items": {"type": "string", "pattern": LOINC_CODE},
                    "uniqueItems": True,
                },
                "parameters": {
                    "type": "object",
                    "maxProperties": 50,
                    "propertyNames": {"pattern": PARAMETER_NAME},
                    "additionalProperties": {"$ref": "#/$defs/parameter"},
                },
                "alerts": {"type": "array", "items": {"$ref": "#/$defs/alert"}},
                "expects": {"type": "array", "items": {"$ref": "#/$defs/expectation"}},
                "triage": {
                    "type": "object",
                    "required": ["bands"],
                    "additionalProperties": False,
                    "properties": {
                        "bands": {
                            "type": "object",
                            "required": ["medium", "high"],
                            "additionalProperties": False,
                            "properties": {
                                "medium": {"type": "integer", "minimum": 1, "maximum": 1000},
                                "high": {"type": "integer", "minimum": 1, "maximum": 1000},
                            },
                        },
                    },
                },
            },
        },
        "pathway_timer": {
            "type": "object",
            "required": ["event", "after"],
            "additionalProperties": False,
            "properties": {
                "event": {"type": "string", "pattern": EVENT_NAME},
                "after": _duration,
                "title": _text,
                "start_on": {"type": "string", "pattern": STATE_NAME},
                "restart_on": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": EVENT_NAME},
                    "uniqueItems": True,
                },
            },
        },
        "reference": {
            "type": "object",
            "required": ["title"],
            "additionalProperties": False,
            "properties": {
                "title": _text,
                "publisher": {"type": "string", "maxLength": 200},
                "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
                "url": {"type": "string", "maxLength": 500},
                "used_for": _long_text,
            },
        },
        "transition": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["to"],
                    "additionalProperties": False,
                    "properties": {
                        "to": {"type": "string"},
                        "roles": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "pattern": ROLE_NAME},
                            "uniqueItems": True,
                        },
                        "guard": _expression,
                        "title": _text,
                    },
                },
            ]
        },
    },
}
