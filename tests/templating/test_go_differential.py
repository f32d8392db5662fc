"""Differential test: the same templates rendered by Go's text/template (+ sprig) and by this engine.

Skipped with a reason where Go or Debian's sprig sources are absent, so CI does not need Go.
"""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_lytics.templating import TemplateError, render
from tests.templating.cases import CASES, PROFILE

FLOATS = [0.0, -0.0, 1.0, 0.1, 0.5, 2.5, 1 / 3, 100.0, 123456.0, 999999.0, 1e6, 1234567.891, 1e20, 1e21, 1e-4,
          1.5e-5, -42.125, 3.0e-7, 6.02214076e23]  # fmt: skip
INTS = [0, 1, -1, 42, 255, -1000, 1234567890123]
STRINGS = ["", "plain", "Hey, Ada", "tab\there", "new\nline", "quote\"s", "caf\u00e9", "\u65e5\u672c",
           "<script>alert('x')</script>", "a&b=c d/e?f", "  spaced  ", "\u00a0nbsp\u00a0", "emoji \U0001f600",
           "ctrl\x01\x1f", "back\\slash", "it's", "hello wide_world o'neil x-y"]  # fmt: skip
VERBS = ["%v", "%d", "%s", "%q", "%x", "%X", "%5v", "%-6v|", "%06.2f", "%e", "%g", "%.3g", "%+d", "%t", "%T",
         "%8.3s|", "%c", "%U", "%#v", "%o", "%b", "% d", "%+.1e", "%#x", "%E"]  # fmt: skip


def _extra_cases() -> list[tuple[str, object]]:
    cases: list[tuple[str, object]] = []
    values = FLOATS + INTS + STRINGS + [True, False, None, [1, "a", 2.5], {"k": 1, "a": [True]}]
    for value in values:
        data = {"v": value}
        cases.append(('{{ .v }}|{{ print .v }}|{{ toJson .v }}|{{ .v | default "d" }}|{{ empty .v }}', data))
        cases.append(("{{ html .v }}|{{ js .v }}|{{ urlquery .v }}|{{ len (print .v) }}", data))
        cases.append(("{{ if .v }}T{{ else }}F{{ end }}|{{ not .v }}|{{ and .v 1 }}|{{ or .v 0 }}", data))
    for verb, value in itertools.product(VERBS, FLOATS[:8] + INTS[:5] + STRINGS[:8] + [True, None, ["x", 1]]):
        cases.append((f'{{{{ printf "{verb}" .v }}}}', {"v": value}))
    for text in STRINGS:
        data = {"s": text}
        cases.append(("{{ upper .s }}|{{ lower .s }}|{{ title .s }}|[{{ trim .s }}]|{{ quote .s }}", data))
        cases.append(('{{ replace " " "_" .s }}|{{ contains "a" .s }}|{{ hasPrefix "a" .s }}|'
                      '{{ trimPrefix "a" .s }}|{{ trimSuffix "e" .s }}', data))  # fmt: skip
    for a, b in itertools.product([1, 2, 1.5, "a", "b", True, None], repeat=2):
        data = {"a": a, "b": b}
        cases.append(("{{ eq .a .b }}", data))
        cases.append(("{{ lt .a .b }}|{{ ge .a .b }}", data))
    cases += [
        ("{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", {"b": 1, "B": 2, "a": 3, "_": 4, "10": 5, "9": 6}),
        ('{{ join "," .x }}', {"x": [1, 2.5, "s", True, None, [1]]}),
        ("{{ coalesce .a .b .c }}", {"a": 0, "b": "", "c": [1]}),
        ('{{ index . "a" }} {{ index .l 0 1 }}', {"a": None, "l": [[1, 2]]}),
        ("{{ with $x := .a }}{{ $x }}{{ else }}none{{ end }}", {"a": 0}),
        ('{{ printf "%*d|%-*d|%.*f" 5 1 4 2 2 3.14159 }}', {}),
        ('{{ printf "%[1]d" 5 }}', {}),
        ('{{ printf "%!" }}', {}),
        ('{{ printf "%z" 1 }}', {}),
        ('{{ printf "%" }}', {}),
        ("{{ 0b101 }} {{ 0o17 }} {{ 017 }} {{ 1_000 }} {{ .5 }} {{ 1. }} {{ -2 }} {{ +3 }} {{ '\\n' }}", {}),
        ('{{ "\\u00e9\\x41\\101\\t" }}', {}),
        ("{{ 1e400 }}", {}),
        ("{{ 0x1p1024 }}", {}),
        ('{{ printf "%*d|%.*f|" 999999999 1 999999999 2.5 }}', {}),
        ('{{ printf "%*d|%-*d|" 1000000 1 -1000001 2 | len }}', {}),
        ('{{ printf "%.999999999f" 1.5 }}', {}),
        ('{{ printf "%99999999d|" 7 }}', {}),
        ('{{ printf "%9999999d" 7 | len }}', {}),
        ("{{ 99999999999999999999 }}", {}),
        ("{{ (.a).b }}", {"a": {"b": 1}}),
        ("{{ (.a).b }}", {}),
        ("{{ $x := 5 }}{{ range $x := .l }}{{ $x }}{{ end }}{{ $x }}", {"l": [1, 2]}),
        ("{{ range $i, $e := . }}{{ $i }}{{ end }}", [10, 20]),
        ("{{ . }}", None),
        ("{{ .a }}", None),
        ("{{ .x.y.z }}", PROFILE),
        ("{{- if .vip -}}\n  VIP\n{{- else -}}\n  regular\n{{- end -}}\n", PROFILE),
        ('{{ template "x" }}', {}),
        ('{{ define "x" }}{{ .a }}{{ end }}{{ block "y" .b }}{{ template "x" . }}{{ end }}', {"b": {"a": 7}}),
        ("{{ else }}", {}),
        ("{{ if }}{{ end }}", {}),
        ("{{ range $a, $b, $c := . }}{{ end }}", {}),
        ("{{ $x, $y := 1 }}", {}),
        ('{{ 3 | printf "%d" }}', {}),
        ("{{ .a | len }}", {"a": "abc"}),
        ('{{ len .a | printf "%03d" }}', {"a": [1, 2]}),
        ("{{ printf }}", {}),
        ('{{ "a" "b" }}', {}),
        ("{{ .a .b }}", {"a": 1, "b": 2}),
        ("{{ index .m 1 }}", {"m": {"a": 1}}),
        ('{{ index .l "a" }}', {"l": [1]}),
        ("{{ index .l -1 }}", {"l": [1]}),
        ("{{ slice .l 1 2 3 }}", {"l": [1, 2, 3]}),
        ("{{ len .m }}{{ range .m }}x{{ end }}", {"m": {}}),
        ("{{ toJson . }}", {"a": 1e21, "b": 1e-7, "c": 123456789.0, "d": "\u2028", "e": -0.0}),
    ]
    return cases


def _ours(template: str, data: object) -> tuple[str | None, str | None]:
    try:
        return render(template, data), None  # type: ignore[arg-type]
    except TemplateError as err:
        return None, str(err)


def _compare(go_renderer, cases: list[tuple[str, object]]) -> list[str]:
    mismatches = []
    for (template, data), go in zip(cases, go_renderer.render(cases), strict=True):
        out, err = _ours(template, data)
        if bool(go["error"]) != (err is not None):
            mismatches.append(f"{template!r} {data!r}: go={go!r} ours={out!r} / {err}")
        elif not go["error"] and go["out"] != out:
            mismatches.append(f"{template!r} {data!r}: go={go['out']!r} ours={out!r}")
    return mismatches


def test_table_matches_go(go_renderer) -> None:
    mismatches = _compare(go_renderer, [(template, data) for _, template, data, _ in CASES])
    assert not mismatches, "\n".join(mismatches)


def test_generated_cases_match_go(go_renderer) -> None:
    cases = _extra_cases()
    assert len(cases) > 500
    mismatches = _compare(go_renderer, cases)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n" + "\n".join(mismatches[:40])


@pytest.mark.parametrize("profile", [PROFILE, {}, {"first_name": None, "last_name": ""}])
def test_documentation_examples_match_go(go_renderer, profile) -> None:
    templates = [
        "Hey, {{ .first_name }}",
        "{{ if .first_name }}Hey, {{ .first_name }}{{ else }}I wish I knew you{{ end }}",
        'Hey, {{.last_name | default "valued customer"}}',
        "{{ if and .first_name .last_name }}Hey, {{ .first_name }} {{ .last_name }}{{ else }}I don't know you{{ end }}",
        '{{ if eq .subscriber_status "subscribed" }}You are a subscriber!{{ else }}You should subscribe!{{ end }}',
    ]
    assert not _compare(go_renderer, [(t, profile) for t in templates])


EDGE_DATA = {"a": 1, "b": "x", "l": [1, 2], "m": {"k": "v"}, "n": None, "f": 1.5}
EDGE_TEMPLATES = [
    "{{.a}}{{.b}}",
    "{{ .a}}",
    "{{.a }}",
    "{{-.a-}}",
    "{{- .a -}}",
    "x {{- .a}}",
    "{{.a -}} y",
    "{{ (.a) }}",
    "{{ ((.a)) }}",
    '{{ (print .a .b) | printf "%s!" }}',
    "{{if (eq .a 1)}}y{{end}}",
    "{{ if eq (len .l) 2 }}two{{ end }}",
    "{{ $x := .l }}{{ range $x }}{{ . }}{{ end }}",
    "{{range $i,$v:=.l}}{{$i}}{{$v}}{{end}}",
    "{{ range $i , $v := .l }}{{$i}}{{end}}",
    '{{ "}}" }}',
    "{{ `{{` }}",
    "{{/**/}}",
    "{{/* */ }}",
    "{{ /* */ }}",
    "{{- /* x */}}a",
    "a{{/* x */ -}}  b",
    "{{.m.k}}{{ .m.k | len }}",
    '{{ index .m "k" | upper }}',
    '{{ .n | default "d" }}',
    "{{ not }}",
    "{{ and }}",
    "{{ and 1 }}",
    '{{ or 0 "" }}',
    "{{ eq }}",
    "{{ eq 1 }}",
    "{{ ne 1 }}",
    "{{ print }}",
    "{{ println }}",
    "{{ html }}",
    '{{ printf "%v" }}',
    '{{ len "" }}',
    '{{ define "a" }}A{{ .b }}{{ end }}{{ template "a" . }}{{ template "a" .m }}',
    '{{ block "z" . }}{{ .a }}{{ end }}{{ template "z" .m }}',
    "{{ $ }}",
    "{{ $.a }}",
    "{{ $x := 1 }}{{ with .m }}{{ $x }}{{ $x = 2 }}{{ end }}{{ $x }}",
    "{{ if .a }}{{ $y := 3 }}{{ end }}{{ $y }}",
    '{{ .a | printf "%d-%d" 5 }}',
    '{{ 1 | printf "%d %d" 2 }}',
    '{{ .b | eq "x" }}',
    "{{ .l | index 0 }}",
    "{{ index .l 1 | print }}",
    "{{ true | not }}",
    "{{ .a.b }}",
    "{{ $.l.x }}",
    '{{ .f | printf "%.0f" }}',
    '{{ printf "%5.1q" "abc" }}',
    '{{ printf "%x" .l }}',
    '{{ printf "%s" .m }}',
    '{{ printf "%d" .m }}',
    '{{ printf "%v %v" true nil }}',
    '{{ printf "%08.3f|%+.2e|% d|%x" -3.14159 12345.678 5 -255 }}',
    '{{ printf "%-08d|" 5 }}',
    '{{ printf "%#o %#x %#X %#b" 8 255 255 5 }}',
    '{{ printf "%c%c" 0x1F600 65 }}',
    '{{ printf "%q" 0x1F600 }}',
    '{{ printf "%6.2s|" "héllo" }}',
    '{{ printf "%t" 1 }}',
    '{{ printf "%.3d" -5 }}',
    '{{ printf "%+q" "é" }}',
    '{{ printf "%#q" "a`b" }}',
    '{{ printf "%#q" "ab" }}',
    '{{ printf "% x" "hi" }}',
    '{{ printf "%e" 0.0 }}',
    '{{ printf "%g" 1e100 }}',
    '{{ printf "%v" 1e-7 }}',
    '{{ printf "%.2v" 3.14159 }}',
    '{{ printf "%10.4v|" 3.14159 }}',
    '{{ printf "%3c|" 65 }}',
    '{{ printf "%-4t|" true }}',
    "{{ range .m }}{{ . }}{{ end }}",
    "{{ range $k, $v := .m }}{{ $k }}{{ end }}",
    "{{ range $v := .m }}{{ $v }}{{ end }}",
    "{{ with $x := .a }}{{ $x }}{{ end }}{{ with $x := .b }}{{ . }}{{ end }}",
    "{{ if $x := .a }}{{ $x }}{{ end }}",
    "{{ range .l }}{{ break }}{{ end }}x",
    "{{ range .l }}{{ if true }}{{ continue }}{{ end }}y{{ end }}x",
    '{{ .l | len | printf "%d" }}',
    "{{ slice .l }}",
    "{{ slice .l 0 1 2 }}",
    "{{ slice .l 1 0 }}",
    "{{ index .l }}",
    "{{ index .m }}",
    '{{ html "a" 1 2 "b" }}',
    '{{ urlquery "a" 1 }}',
    '{{ js "\\u2028" }}',
    '{{ js "é" }}',
    '{{ print 1 2 }}{{ print "a" "b" }}{{ print 1 "a" 2 }}',
    "{{ print .l .m }}",
    "{{ println .n .a }}",
    '{{ title "o\'neil mc-donald ÉCOLE élan" }}',
    '{{ lower "ÀÉ" }}{{ upper "ß" }}',
    '{{ trim "\\u3000 x \\u00a0" }}',
    '{{ join "," .m }}',
    '{{ join "," nil }}',
    "{{ toJson .f }}",
    "{{ toJson nil }}",
    "{{ coalesce }}",
    "{{ default }}",
    "{{ default 1 2 3 }}",
    "{{ empty }}",
    "{{ 'a' }}",
    "{{ '\\'' }}",
    "{{ '\\x41' }}",
    "{{ 'ab' }}",
    '{{ "\\q" }}',
    "{{ 1.5e3 }}",
    "{{ 0x1p4 }}",
    "{{ 1i }}",
    "{{ -0 }}",
    "{{ 08 }}",
    "{{ 0_1 }}",
    "{{ .a | .b }}",
    "{{ .b | $ }}",
    "{{ (1) 2 }}",
    "{{ $x := 1 }}{{ $x | print }}",
    "{{ .a.b.c | default 4 }}",
    '{{ define "q" }}{{ end }}{{ template "q" }}ok',
    "{{ if .a }}a{{ else if .b }}b{{ else }}c{{ end }}",
    "{{ if .n }}a{{ else if .z }}b{{ end }}",
    "{{ with .n }}x{{ else if .a }}y{{ end }}",
    "{{ range .l }}{{ else if .a }}{{ end }}",
    "{{ if .a }}{{ else }}{{ else if .b }}{{ end }}",
    "{{ end }}",
    "{{ else }}x",
    "{{ if 1 }}{{ end }}{{ end }}",
    '{{ template "x" 1 2 }}',
    "{{ template .b }}",
    '{{ define "x" }}{{ define "y" }}{{ end }}{{ end }}',
    '{{define "x"}}1{{end}}{{define "y"}}2{{end}}{{template "y"}}{{template "x"}}',
    "{{ .a | and 0 }}",
    "{{ .a | or 0 }}",
    "{{ 0 | and 1 }}",
    "{{ nil | print }}",
    "{{ print nil }}",
    "{{ eq nil nil }}",
    "{{ eq .n nil }}",
    "{{ eq .a nil }}",
    "{{ .b | len | eq 1 }}",
    "{{ lt 1 2.0 }}",
    '{{ lt "a" 1 }}',
    "{{ le 2 2 }}",
    '{{ ge "b" "a" }}',
    "{{ gt .a .zz }}",
]


def test_edge_cases_match_go(go_renderer) -> None:
    """Whitespace, trim markers, comments, scoping, arity errors, odd literals and printf corners."""
    mismatches = _compare(go_renderer, [(t, EDGE_DATA) for t in EDGE_TEMPLATES if t != "{{ 1i }}"])
    assert not mismatches, "\n".join(mismatches)
