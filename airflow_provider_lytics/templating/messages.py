"""A message as a set of named Go templates (title, subtitle, body...), validated together and previewed.

``validate_templates`` is the helper DAG tests call: it parses every template (reporting all syntax errors at
once, not just the first) and renders them against sample profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.templating.errors import TemplateError, TemplateSyntaxError
from airflow_provider_lytics.templating.syntax import joined_syntax_error, message_entries
from airflow_provider_lytics.templating.template import compile_template

NO_VALUE = "<no value>"


@dataclass
class Preview:
    """One sample profile rendered: the texts, or the error per template that failed."""

    profile: Mapping[str, Any]
    rendered: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def missing_values(self) -> list[str]:
        """Templates whose output contains ``<no value>`` (a field the profile lacks, printed without a default)."""
        return [name for name, text in self.rendered.items() if NO_VALUE in text]


class MessageTemplates:
    """Named templates rendered together for each profile.

    :param templates: ``{"title": "...", "body": "..."}``; names must be identifiers, values strings.
    :param missing_key: ``"default"`` or ``"error"`` (see :class:`~.template.Template`).
    :raises TemplateSyntaxError: listing every template that does not parse.
    """

    def __init__(self, templates: Mapping[str, str], *, missing_key: str = "default") -> None:
        problems: list[str] = []
        self.templates = {}
        for name, source in message_entries(templates):
            try:
                self.templates[name] = compile_template(source, name, missing_key=missing_key)
            except TemplateSyntaxError as err:
                problems.append(str(err))
        if problems:
            raise joined_syntax_error(problems)

    @property
    def names(self) -> list[str]:
        return list(self.templates)

    def render(self, profile: Mapping[str, Any]) -> dict[str, str]:
        """All templates for one profile; raises the first :class:`TemplateError`."""
        return {name: tmpl.render(profile) for name, tmpl in self.templates.items()}

    def try_render(self, profile: Mapping[str, Any]) -> tuple[dict[str, str] | None, str | None]:
        """``(rendered, None)`` or ``(None, reason)``: for per-profile failure reporting."""
        try:
            return self.render(profile), None
        except TemplateError as err:
            return None, str(err)

    def preview(self, samples: Iterable[Mapping[str, Any]]) -> list[Preview]:
        """Render every template against each sample, collecting per-template errors instead of raising."""
        previews = []
        for sample in samples:
            preview = Preview(profile=sample)
            for name, tmpl in self.templates.items():
                try:
                    preview.rendered[name] = tmpl.render(sample)
                except TemplateError as err:
                    preview.errors[name] = str(err)
            previews.append(preview)
        return previews


def validate_templates(
    templates: Mapping[str, str],
    samples: Iterable[Mapping[str, Any]] = (),
    *,
    missing_key: str = "default",
    strict: bool = False,
) -> list[Preview]:
    """Parse ``templates`` and preview them on ``samples``; raise :class:`TemplateError` if anything fails.

    With ``strict=True`` a sample whose output contains ``<no value>`` also fails, which catches field-name
    typos (``.frist_name``) that Go would otherwise print silently.
    """
    messages = MessageTemplates(templates, missing_key=missing_key)
    previews = messages.preview(samples)
    problems = []
    for i, preview in enumerate(previews):
        problems += [f"sample {i}: {reason}" for reason in preview.errors.values()]
        if strict:
            problems += [f"sample {i}: {name} prints <no value> (a field is missing: add | default \"...\")"
                         for name in preview.missing_values]  # fmt: skip
    if problems:
        raise TemplateError("; ".join(problems), name="preview")
    return previews
