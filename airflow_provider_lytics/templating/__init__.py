"""Go ``text/template`` for Lytics profile messages, in pure Python.

Public API (stable)::

    from airflow_provider_lytics.templating import render, Template, TemplateError

    render('Hey, {{ .first_name | default "there" }}', profile)      # parse (cached) and render
    tmpl = Template("{{ if .first_name }}Hi {{ .first_name }}{{ end }}")  # parse once...
    tmpl.render(profile)                                              # ...render many times

Errors are :class:`TemplateError` subclasses with ``line``/``column``: :class:`TemplateSyntaxError` when
parsing, :class:`TemplateExecError` when rendering (:class:`TemplateLimitError` when a render passes the output or
operation limit).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_lytics.templating.errors import (
        TemplateError,
        TemplateExecError,
        TemplateLimitError,
        TemplateSyntaxError,
    )
    from airflow_provider_lytics.templating.messages import MessageTemplates, Preview, validate_templates
    from airflow_provider_lytics.templating.syntax import check_message_templates, check_syntax
    from airflow_provider_lytics.templating.template import Template, compile_template, render

#: Public name -> submodule. Loaded on first use (module ``__getattr__``), so importing one light submodule
#: (``syntax``, ``errors``) while a DAG file is parsed does not load the compiler and the executor.
_EXPORTS = {
    "MessageTemplates": "messages",
    "Preview": "messages",
    "validate_templates": "messages",
    "Template": "template",
    "compile_template": "template",
    "render": "template",
    "TemplateError": "errors",
    "TemplateExecError": "errors",
    "TemplateLimitError": "errors",
    "TemplateSyntaxError": "errors",
    "check_message_templates": "syntax",
    "check_syntax": "syntax",
}

__all__ = [
    "MessageTemplates",
    "Preview",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateLimitError",
    "TemplateSyntaxError",
    "check_message_templates",
    "check_syntax",
    "compile_template",
    "render",
    "validate_templates",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
