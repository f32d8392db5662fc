"""Parse-only checks (``templating.syntax``): the same verdicts as compiling, without loading the engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_lytics.templating.errors import TemplateSyntaxError
from airflow_provider_lytics.templating.funcs import FUNCS
from airflow_provider_lytics.templating.messages import MessageTemplates
from airflow_provider_lytics.templating.syntax import FUNC_NAMES, check_message_templates, check_syntax

ROOT = Path(__file__).resolve().parents[2]

#: Message sets MessageTemplates accepts or refuses; check_message_templates must agree on each, word for word.
CASES = [
    {"title": 'Hi {{ .first_name | default "there" }}', "body": "{{ if .vip }}VIP{{ else }}-{{ end }}"},
    {"t": '{{ printf "%.2f" .ltv }} {{ upper .name }} {{ trimSuffix "x" .s }} {{ toJson . }}'},
    {"t": '{{ define "x" }}X{{ end }}{{ template "x" . }}{{ range $i, $v := .l }}{{ $i }}{{ end }}'},
    {"title": "{{ .a", "subtitle": "ok", "body": "{{ nope }}"},
    {"title": "{{ uper .name }}"},
    {"title": "{{ if eq .s \u201cx\u201d }}y{{ end }}"},
    {"t": "{{ $x }}"},
    {"t": "{{ end }}"},
    {"t": "{{ 1e999 }}"},
    {"bad name": "x"},
    {"t": 3},
    {},
]


def _verdict(check, templates: dict, missing_key: str = "default") -> tuple[str, str] | None:
    try:
        check(templates, missing_key=missing_key)
    except (TemplateSyntaxError, ValueError) as err:
        return type(err).__name__, str(err)
    return None


def test_function_names_match_the_function_library() -> None:
    assert set(FUNCS) == FUNC_NAMES


@pytest.mark.parametrize("templates", CASES, ids=range(len(CASES)))
def test_message_check_agrees_with_compiling(templates: dict) -> None:
    assert _verdict(check_message_templates, templates) == _verdict(MessageTemplates, templates)


def test_the_cases_hold_both_verdicts() -> None:
    verdicts = [_verdict(MessageTemplates, t) for t in CASES]
    assert None in verdicts and ("TemplateSyntaxError", verdicts[3][1]) == verdicts[3]
    assert "2 templates do not parse" in verdicts[3][1] and "did you mean 'upper'" in verdicts[4][1]


def test_unknown_missing_key_is_refused_like_the_engine() -> None:
    templates = {"t": "{{ .a }}"}
    got = _verdict(check_message_templates, templates, missing_key="strict")
    assert got == _verdict(MessageTemplates, templates, missing_key="strict")
    assert got is not None and "missing_key must be one of" in got[1]


def test_check_syntax_names_the_template_and_position() -> None:
    check_syntax("{{ if .vip }}VIP{{ end }}")
    with pytest.raises(TemplateSyntaxError, match=r"^alert:1:4: function 'nope' not defined"):
        check_syntax("{{ nope }}", "alert")


def test_checking_loads_no_compiler_executor_or_function_library() -> None:
    code = (
        "import json, sys\n"
        "from airflow_provider_lytics.templating import check_message_templates\n"
        "check_message_templates({'t': '{{ printf \"%d\" .n | upper }}'})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('airflow_provider_lytics.templating.'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
    loaded = {m.rsplit(".", 1)[-1] for m in json.loads(done.stdout)}
    assert loaded == {"errors", "lexer", "literals", "nodes", "parser", "syntax"}
