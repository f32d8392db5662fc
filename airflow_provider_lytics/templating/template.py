"""Parse once, render many: the :class:`Template` object and the module-level cache behind :func:`render`."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_lytics.templating.compiler import compile_body
from airflow_provider_lytics.templating.errors import TemplateExecError, TemplateLimitError
from airflow_provider_lytics.templating.exec import MAX_OUTPUT, MAX_STEPS, Run
from airflow_provider_lytics.templating.funcs import ANY, FUNCS, Func
from airflow_provider_lytics.templating.parser import parse
from airflow_provider_lytics.templating.syntax import check_missing_key
from airflow_provider_lytics.templating.values import MISSING

CACHE_SIZE = 512


class Template:
    """A parsed Go template. Thread-safe: rendering keeps its state in a per-call :class:`Run`.

    :param source: the template text, e.g. ``Hey, {{ .first_name | default "there" }}``.
    :param name: used in error messages (``title:1:9: ...``).
    :param missing_key: Go's ``missingkey`` option: ``"default"`` (missing fields print ``<no value>``) or
        ``"error"`` (a missing field fails the render, useful to catch typos in field names).
    :param funcs: extra functions ``{name: callable}``; each receives Go-like values and returns one.
    :param max_output: most characters one render may produce (default 10 million); more raises
        :class:`TemplateLimitError`. Function results (e.g. ``printf``) are held to the same bound.
    :param max_steps: most operations one render may run (statements, function calls, range iterations,
        template calls; default 1 million); more raises :class:`TemplateLimitError`. Counted, not timed.
    :raises TemplateSyntaxError: when the text is not a valid template.
    """

    def __init__(
        self,
        source: str,
        name: str = "template",
        *,
        missing_key: str = "default",
        funcs: Mapping[str, Callable[..., Any]] | None = None,
        max_output: int = MAX_OUTPUT,
        max_steps: int = MAX_STEPS,
    ) -> None:
        if max_output < 1 or max_steps < 1:
            raise ValueError("max_output and max_steps must be positive")
        self.max_output = max_output
        self.max_steps = max_steps
        check_missing_key(missing_key)
        self.source = source
        self.name = name
        self.missing_key = "error" if missing_key == "error" else "default"
        self.funcs: dict[str, Func] = dict(FUNCS)
        for fname, fn in (funcs or {}).items():
            if not fname.isidentifier():
                raise ValueError(f"function name {fname!r} is not a valid identifier")
            self.funcs[fname] = Func(fn, (), ANY)
        self.root, self.defined = parse(source, name, self.funcs)
        self.compiled_root = compile_body(self.root, self.funcs)
        self.compiled_defined = {key: compile_body(body, self.funcs) for key, body in self.defined.items()}

    def render(self, data: Any = None) -> str:
        """Execute the template with ``data`` as dot (usually a profile mapping) and return the text."""
        return self._run(self.compiled_root, data)

    def render_defined(self, template_name: str, data: Any = None) -> str:
        """Execute one ``{{define}}``/``{{block}}`` template by name."""
        if template_name not in self.defined:
            known = ", ".join(sorted(self.defined)) or "none"
            raise KeyError(f"template {template_name!r} is not defined (defined: {known})")
        return self._run(self.compiled_defined[template_name], data)

    @property
    def defined_names(self) -> list[str]:
        return sorted(self.defined)

    def _run(self, root: Any, data: Any) -> str:
        if data is None:  # Go: executing with nil data makes dot the invalid value
            data = MISSING
        run = Run(self, data)
        try:
            root(run, data)
        except RecursionError:
            raise TemplateExecError("template nests too deeply to render", name=self.name) from None
        except TemplateExecError:
            raise
        except MemoryError:
            raise TemplateLimitError("the render ran out of memory", name=self.name) from None
        except Exception as err:  # a user function misbehaved: keep the contract (TemplateError subclasses only)
            raise run.fail(f"{type(err).__name__}: {err}") from err
        return "".join(run.out)

    def __repr__(self) -> str:
        preview = self.source if len(self.source) <= 40 else self.source[:37] + "..."
        return f"Template({self.name!r}, {preview!r})"


_cache: OrderedDict[tuple[str, str, str], Template] = OrderedDict()
_cache_lock = threading.Lock()


def compile_template(source: str, name: str = "template", *, missing_key: str = "default") -> Template:
    """A parsed :class:`Template`, from an LRU cache keyed by (source, name, missing_key)."""
    key = (source, name, missing_key)
    with _cache_lock:
        tmpl = _cache.get(key)
        if tmpl is not None:
            _cache.move_to_end(key)
            return tmpl
    tmpl = Template(source, name, missing_key=missing_key)
    with _cache_lock:
        _cache[key] = tmpl
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return tmpl


def render(template: str, data: Mapping[str, Any] | None = None, *, missing_key: str = "default") -> str:
    """Render Go-template text with ``data``; parsed templates are cached, so calling this in a loop is cheap.

    :raises TemplateSyntaxError: the text is not a valid template.
    :raises TemplateExecError: rendering failed for this data (e.g. comparing a number with a string).
    """
    return compile_template(template, missing_key=missing_key).render(data)
