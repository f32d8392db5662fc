"""Unit tests for the Go-template engine: the case table, error messages with positions, and the public API."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_lytics.templating import (
    MessageTemplates,
    Template,
    TemplateError,
    TemplateExecError,
    TemplateSyntaxError,
    compile_template,
    render,
    validate_templates,
)
from tests.templating.cases import CASES, ERROR, PROFILE


@pytest.mark.parametrize(("template", "data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case_table(template: str, data: object, expected: object) -> None:
    if expected is ERROR:
        with pytest.raises(TemplateError):
            render(template, data)  # type: ignore[arg-type]
    else:
        assert render(template, data) == expected  # type: ignore[arg-type]


# -- error messages a marketer can act on ------------------------------------------------------------------
def test_typographic_quotes_say_to_use_straight_quotes() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        render("Hi!\n{{ if eq .subscriber_status \u201csubscribed\u201d }}x{{ end }}", PROFILE)
    err = info.value
    assert (err.line, err.column) == (2, 29)
    assert "straight quotes" in str(err) and "\u201c" in str(err)
    assert str(err).startswith("template:2:29: ")


def test_single_typographic_quote_in_char_position() -> None:
    with pytest.raises(TemplateSyntaxError, match="straight quotes"):
        render("{{ printf \u2018%s\u2019 .a }}", {})


def test_unknown_function_suggests_a_close_name() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"function 'defualt' not defined \(did you mean 'default'\?\)"):
        render('{{ .a | defualt "x" }}', {})


def test_field_without_dot_explains_the_dot() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"write \.first_name with a leading dot"):
        render("Hey, {{ first_name }}", PROFILE)


def test_pathological_nesting_is_a_template_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="nests too deeply"):
        Template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")


@pytest.mark.parametrize(
    ("template", "line", "column", "fragment"),
    [
        ("line one\n{{ .a", 2, 1, "unclosed action"),
        ("{{ if .a }}\nyes", 2, 4, "missing its {{end}}"),
        ("ok {{ end }}", 1, 4, "unexpected {{end}}"),
        ('{{ "abc }}', 1, 4, "unterminated quoted string"),
        ("{{ $x }}", 1, 4, "undefined variable '$x'"),
        ("{{ .a | 1 }}", 1, 9, "non executable command in pipeline stage 2"),
        ("{{ break }}", 1, 4, "only allowed inside {{range}}"),
        ('{{ if .a }}{{ define "x" }}{{ end }}{{ end }}', 1, 15, "only allowed at the top level"),
        ("{{ 99999999999999999999 }}", 1, 4, "integer overflow"),
    ],
)
def test_syntax_errors_have_positions(template: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        Template(template)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("template", "data", "line", "column", "fragment"),
    [
        (
            "Value:\n  {{ gt .ltv 1000 }}",
            PROFILE,
            2,
            6,
            "incompatible types for comparison: float64 1250.5 and int 1000",
        ),
        ("{{ .first_name | upper }} {{ .missing | upper }}", PROFILE, 1, 41, "invalid value; expected string"),
        ("{{ range .visits }}{{ end }}", PROFILE, 1, 4, "range can't iterate over 42"),
        ("{{ .first_name.x }}", PROFILE, 1, 4, "can't evaluate field x in type string"),
        ('{{ template "nope" }}', {}, 1, 4, "no such template 'nope'"),
        ("{{ index .tags 7 }}", PROFILE, 1, 4, "error calling index: index out of range: 7"),
    ],
)
def test_exec_errors_have_positions(template: str, data: dict, line: int, column: int, fragment: str) -> None:
    with pytest.raises(TemplateExecError) as info:
        render(template, data)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert fragment in str(info.value)


def test_int_float_comparison_error_explains_the_fix() -> None:
    with pytest.raises(TemplateExecError, match=r"1000\.0|5\.0"):
        render("{{ gt .ltv 1000 }}", PROFILE)


def test_recursion_is_bounded() -> None:
    with pytest.raises(TemplateExecError, match="maximum template depth"):
        render('{{ define "loop" }}{{ template "loop" . }}{{ end }}{{ template "loop" . }}', {})


def test_errors_are_template_error_subclasses() -> None:
    assert issubclass(TemplateSyntaxError, TemplateError)
    assert issubclass(TemplateExecError, TemplateError)


# -- public API ---------------------------------------------------------------------------------------------
def test_parse_once_render_many() -> None:
    tmpl = Template('Hi {{ .first_name | default "there" }}', name="title")
    assert [tmpl.render(p) for p in (PROFILE, {}, {"first_name": "Bo"})] == ["Hi Ada", "Hi there", "Hi Bo"]


def test_render_caches_parsed_templates() -> None:
    source = "{{ .a }} cached"
    assert compile_template(source) is compile_template(source)
    assert compile_template(source) is not compile_template(source, missing_key="error")


def test_missing_key_error_catches_typos() -> None:
    tmpl = Template("Hi {{ .frist_name }}", missing_key="error")
    with pytest.raises(TemplateExecError, match="map has no entry for key 'frist_name'"):
        tmpl.render(PROFILE)
    assert Template("{{ .first_name }}", missing_key="error").render(PROFILE) == "Ada"
    with pytest.raises(ValueError, match="missing_key must be one of"):
        Template("x", missing_key="strict")


def test_custom_functions() -> None:
    tmpl = Template("{{ shout .first_name }}", funcs={"shout": lambda s: s.upper() + "!"})
    assert tmpl.render(PROFILE) == "ADA!"
    with pytest.raises(TemplateSyntaxError):
        Template("{{ shout .first_name }}")


def test_nil_data_and_non_string_template() -> None:
    assert render("{{ .a }}|{{ . }}", None) == "<no value>|<no value>"
    with pytest.raises(TypeError, match="must be a str"):
        Template(b"{{ .a }}")  # type: ignore[arg-type]


def test_defined_templates_render_by_name() -> None:
    tmpl = Template('{{ define "title" }}Hi {{ .first_name }}{{ end }}{{ define "body" }}Bye{{ end }}')
    assert tmpl.defined_names == ["body", "title"]
    assert tmpl.render_defined("title", PROFILE) == "Hi Ada"
    with pytest.raises(KeyError, match="defined: body, title"):
        tmpl.render_defined("subtitle", PROFILE)


def test_concurrent_rendering_is_isolated() -> None:
    tmpl = Template("{{ range $i, $v := .items }}{{ $v }}{{ end }}-{{ .id }}")
    results: dict[int, str] = {}

    def work(k: int) -> None:
        for _ in range(200):
            results[k] = tmpl.render({"id": k, "items": list(range(k % 5))})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: "".join(map(str, range(k % 5))) + f"-{k}" for k in range(8)}


# -- message sets and validation helper ---------------------------------------------------------------------
def test_message_templates_render_and_report_every_syntax_error() -> None:
    messages = MessageTemplates({"title": "Hi {{ .first_name }}", "body": "{{ if .vip }}VIP{{ else }}-{{ end }}"})
    assert messages.render(PROFILE) == {"title": "Hi Ada", "body": "VIP"}
    with pytest.raises(TemplateSyntaxError) as info:
        MessageTemplates({"title": "{{ .a", "subtitle": "ok", "body": "{{ nope }}"})
    assert "2 templates do not parse" in str(info.value)
    assert "title:1:1" in str(info.value) and "body:1:4" in str(info.value)
    with pytest.raises(ValueError, match="simple identifier"):
        MessageTemplates({"bad name": "x"})
    with pytest.raises(ValueError, match="non-empty mapping"):
        MessageTemplates({})


def test_try_render_reports_reason_without_raising() -> None:
    messages = MessageTemplates({"title": "{{ gt .ltv 1000.0 }}"})
    assert messages.try_render(PROFILE) == ({"title": "true"}, None)
    rendered, reason = messages.try_render({"ltv": "high"})
    assert rendered is None and "incompatible types for comparison" in reason


def test_validate_templates_previews_samples() -> None:
    templates = {"title": 'Hi {{ .first_name | default "there" }}', "body": "{{ .last_name }}"}
    previews = validate_templates(templates, [PROFILE, {}])
    assert [p.rendered["title"] for p in previews] == ["Hi Ada", "Hi there"]
    assert previews[1].missing_values == ["body"]
    with pytest.raises(TemplateError, match=r"sample 1: body prints <no value>"):
        validate_templates(templates, [PROFILE, {}], strict=True)
    with pytest.raises(TemplateError, match=r"sample 0: .*incompatible types"):
        validate_templates({"t": "{{ lt .visits 1.5 }}"}, [PROFILE])
