"""The pathway definition language: parsing, validation and the compiled form."""

from workflows.definition.compiled import CompiledDefinition, compile_document, localized
from workflows.definition.problems import InvalidDefinition, Problem
from workflows.definition.schema import TASKS_COMPLETED
from workflows.definition.validation import ValidationResult, validate_document, validate_source

__all__ = [
    "TASKS_COMPLETED",
    "CompiledDefinition",
    "InvalidDefinition",
    "Problem",
    "ValidationResult",
    "compile_document",
    "localized",
    "validate_document",
    "validate_source",
]
