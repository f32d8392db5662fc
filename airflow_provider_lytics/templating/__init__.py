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

from airflow_provider_lytics.templating.errors import (
    TemplateError,
    TemplateExecError,
    TemplateLimitError,
    TemplateSyntaxError,
)
from airflow_provider_lytics.templating.messages import MessageTemplates, Preview, validate_templates
from airflow_provider_lytics.templating.template import Template, compile_template, render

__all__ = [
    "MessageTemplates",
    "Preview",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateLimitError",
    "TemplateSyntaxError",
    "compile_template",
    "render",
    "validate_templates",
]
