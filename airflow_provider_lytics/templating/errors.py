"""Errors raised by the Go-template engine: every one says where (line:column) and what to change."""

from __future__ import annotations


class TemplateError(Exception):
    """Base class: a template could not be parsed or could not be rendered for some data.

    ``name`` is the template's name, ``line``/``column`` are 1-based (``None`` when unknown) and ``reason``
    is the message without the location prefix.
    """

    kind = "template"

    def __init__(self, reason: str, *, name: str = "template", line: int | None = None, column: int | None = None):
        self.reason = reason
        self.name = name
        self.line = line
        self.column = column
        where = f"{name}:{line}:{column}" if line is not None else name
        super().__init__(f"{where}: {reason}")


class TemplateSyntaxError(TemplateError):
    """The template text is not valid Go template syntax (raised when parsing, before any data is seen)."""

    kind = "syntax"


class TemplateExecError(TemplateError):
    """The template is valid but failed for one data record (bad comparison, wrong type, missing key...)."""

    kind = "exec"


class TemplateLimitError(TemplateExecError):
    """Rendering went past a limit of the engine (output size, operations): see ``Template(max_output=...,
    max_steps=...)``. Limits count characters and operations, never seconds, so a render fails the same way on
    any machine."""

    kind = "limit"


class ValueTooLarge(ValueError):
    """A function would build a string longer than the engine allows."""


def location(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    start = source.rfind("\n", 0, offset) + 1
    return line, offset - start + 1
