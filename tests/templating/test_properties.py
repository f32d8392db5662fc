"""Property-based tests of the Go-template engine: any text either parses or raises TemplateSyntaxError, and
rendering any parsed template with any JSON-shaped data either succeeds or raises a TemplateError (never
another exception); the operation and output limits bound the time of every case."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_lytics.templating import Template, TemplateError
from tests.property_settings import fuzz_settings

PIECES = st.sampled_from([
    "{{", "}}", " ", ".", ".a", ".b.c", "$", "$x", ":=", "=", "|", "(", ")", '"s"', "'c'", "1", "-2", "0x1p3",
    "1e400", "nil", "true", "if", "else", "end", "range", "with", "define", '"t"', "template", "block", "break",
    "continue", "printf", '"%*d"', '"%.*f"', '"%v %s"', "len", "index", "eq", "lt", "and", "or", "not", "default",
    "replace", "join", "toJson", "html", "upper", "x", "\n", "{{-", "-}}", "/*", "*/",
])  # fmt: skip
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.floats(allow_nan=False), st.text(max_size=6)),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c"]), kids, max_size=3)
    ),
    max_leaves=10,
)  # fmt: skip


@fuzz_settings(200)
@given(st.lists(PIECES, max_size=25).map("".join), st.dictionaries(st.sampled_from(["a", "b", "x"]), JSON, max_size=3))
def test_parse_and_render_raise_only_template_errors(source: str, data: dict) -> None:
    try:
        tmpl = Template(source, max_steps=10_000, max_output=100_000)
    except TemplateError:
        return
    try:
        out = tmpl.render(data)
    except TemplateError:
        return
    assert isinstance(out, str) and len(out) <= 100_000
