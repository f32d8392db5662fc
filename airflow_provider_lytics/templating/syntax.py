"""Syntax checks with the parser alone: what an operator validates while a DAG file is parsed.

The lexer and parser need only the *names* of the template functions, not the functions, so checking a
template here loads neither the compiler nor the executor, the function library or ``printf``. A template that
passes here compiles: :class:`~.template.Template` runs the same parser over the same names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_lytics.templating.errors import TemplateSyntaxError
from airflow_provider_lytics.templating.parser import parse

#: The names of the functions templates may call (``funcs.FUNCS``: Go's builtins and the Sprig subset);
#: ``tests/templating/test_syntax.py`` keeps the two in step.
FUNC_NAMES = frozenset(
    {
        # Go text/template builtins
        "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice",
        "print", "printf", "println", "html", "js", "urlquery",
        # Sprig
        "default", "empty", "coalesce", "upper", "lower", "title", "trim", "replace", "contains", "hasPrefix",
        "hasSuffix", "join", "toJson", "trimPrefix", "trimSuffix", "quote",
    }
)  # fmt: skip
#: Go's ``missingkey`` options (see :class:`~.template.Template`).
MISSING_KEY_MODES = ("default", "invalid", "zero", "error")


def check_missing_key(missing_key: str) -> None:
    """Raise ``ValueError`` unless ``missing_key`` is one of :data:`MISSING_KEY_MODES`."""
    if missing_key not in MISSING_KEY_MODES:
        raise ValueError(f"missing_key must be one of {', '.join(MISSING_KEY_MODES)}; got {missing_key!r}")


def check_syntax(source: str, name: str = "template") -> None:
    """Raise :class:`TemplateSyntaxError` when ``source`` is not a valid template (nothing is compiled)."""
    parse(source, name, FUNC_NAMES)


def message_entries(templates: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """``(name, source)`` of a message's named templates, checking each name and type on the way."""
    if not isinstance(templates, Mapping) or not templates:
        raise ValueError("templates must be a non-empty mapping of name to Go template text, "
                         "e.g. {'title': 'Hi {{ .first_name }}'}")  # fmt: skip
    for name, source in templates.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"template name {name!r} must be a simple identifier such as 'title' or 'body'")
        if not isinstance(source, str):
            raise ValueError(f"template {name!r} must be a string, got {type(source).__name__}")
        yield name, source


def joined_syntax_error(problems: list[str]) -> TemplateSyntaxError:
    """One :class:`TemplateSyntaxError` listing every template of a message that does not parse."""
    err = TemplateSyntaxError("; ".join(problems), name="templates")
    err.args = (problems[0] if len(problems) == 1 else f"{len(problems)} templates do not parse: " +
                "; ".join(problems),)  # fmt: skip
    return err


def check_message_templates(templates: Mapping[str, Any], *, missing_key: str = "default") -> None:
    """What :class:`~.messages.MessageTemplates` checks when built, with the parser only.

    :raises ValueError: a bad name, a non-string template or an unknown ``missing_key``.
    :raises TemplateSyntaxError: listing every template that does not parse.
    """
    problems: list[str] = []
    for name, source in message_entries(templates):
        check_missing_key(missing_key)
        try:
            check_syntax(source, name)
        except TemplateSyntaxError as err:
            problems.append(str(err))
    if problems:
        raise joined_syntax_error(problems)
