"""Limits of the template engine: hostile templates or data fail fast with TemplateLimitError (counted in
characters and operations, never in seconds), and huge printf widths behave as in Go's fmt."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.templating import Template, TemplateError, TemplateLimitError, render
from airflow_provider_lytics.templating.errors import TemplateSyntaxError


@pytest.mark.parametrize(
    ("template", "data", "expected"),
    [
        ('{{ printf "%*d" .w 1 }}', {"w": 999_999_999}, "%!(BADWIDTH)1"),
        ('{{ printf "%.*f" .w 1.5 }}', {"w": 999_999_999}, "%!(BADPREC)1.500000"),
        ('{{ printf "%.999999999f" 1.5 }}', {}, "%!(NOVERB)%!(EXTRA float64=1.5)"),
        ('{{ printf "%999999999d|" 1 }}', {}, "%!(NOVERB)%!(EXTRA int=1)"),
        ('{{ printf "%*d" 1000000 1 | len }}', {}, "1000000"),  # Go's largest width is still allowed
        ('{{ printf "%*d" -1000001 1 }}', {}, "%!(BADWIDTH)1"),
    ],
)
def test_huge_widths_and_precisions_are_bad_verbs_like_go(template: str, data: dict, expected: str) -> None:
    assert render(template, data) == expected


def test_hex_float_overflow_is_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="too large"):
        Template("{{ 0x1p1024 }}")


def test_templates_calling_each_other_twice_stop_at_the_step_limit() -> None:
    defs = "".join(f'{{{{define "t{i}"}}}}{{{{template "t{i + 1}" .}}}}{{{{template "t{i + 1}" .}}}}{{{{end}}}}'
                   for i in range(30))  # fmt: skip
    tmpl = Template(defs + '{{define "t30"}}x{{end}}{{template "t0" .}}', max_steps=20_000)
    with pytest.raises(TemplateLimitError, match="more than 20000 operations"):
        tmpl.render({})


def test_output_limit() -> None:
    tmpl = Template("{{ range .items }}{{ . }}{{ end }}", max_output=1000)
    assert len(tmpl.render({"items": ["x" * 100] * 10})) == 1000
    with pytest.raises(TemplateLimitError, match="exceed 1000 characters") as info:
        tmpl.render({"items": ["x" * 100] * 11})
    assert info.value.line == 1


def test_function_results_are_bounded_before_they_are_built() -> None:
    with pytest.raises(TemplateLimitError, match="replace"):
        render('{{ replace "" (printf "%1000000s" "") (printf "%1000000s" "") }}', {})
    with pytest.raises(TemplateLimitError, match="printf"):
        render('{{ printf "%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s%*s" ' + '1000000 "" ' * 11 + "}}", {})


def test_limits_are_template_errors() -> None:
    assert issubclass(TemplateLimitError, TemplateError)
    with pytest.raises(ValueError, match="positive"):
        Template("x", max_steps=0)
