"""Executes a parsed Go template against JSON-shaped data with Go's semantics.

Mirrors Go's ``text/template`` executor: pipelines pass the previous command's result as the final argument,
missing map keys are Go's invalid value (``<no value>``), ``and``/``or`` short-circuit and return an operand,
variables are scoped to the enclosing control structure, ``range`` walks maps in sorted key order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.templating import nodes as n
from airflow_provider_lytics.templating.errors import TemplateExecError, TemplateLimitError, ValueTooLarge, location
from airflow_provider_lytics.templating.funcs import ANY, BUILTINS, INT, STRING, VALUE, Func, FuncError, coerce
from airflow_provider_lytics.templating.values import MISSING, format_value, go_type, truth

if TYPE_CHECKING:
    from airflow_provider_lytics.templating.template import Template

MAX_DEPTH = 200
#: Default limits of one render (see :class:`~.template.Template`): characters of output, and operations
#: (statements, function calls, range iterations and template calls). Counted, never timed.
MAX_OUTPUT = 10_000_000
MAX_STEPS = 1_000_000


class _NoFinal:
    """Marks "no piped value" (Go's ``missingVal``), distinct from a missing field."""

    __slots__ = ()


NO_FINAL: Any = _NoFinal()


class Break(Exception):
    """``{{break}}``: unwinds to the enclosing range."""


class Continue(Exception):
    """``{{continue}}``: unwinds to the next range iteration."""


class Run:
    """One execution: output buffer, variable stack and call depth. Not shared between threads."""

    __slots__ = ("depth", "funcs", "max_output", "max_steps", "missing_error", "out", "pos", "size", "steps", "tmpl",
                 "vars")  # fmt: skip

    def __init__(self, tmpl: Template, data: Any) -> None:
        self.tmpl = tmpl
        self.steps = 0
        self.size = 0
        self.max_steps: int = getattr(tmpl, "max_steps", MAX_STEPS)
        self.max_output: int = getattr(tmpl, "max_output", MAX_OUTPUT)
        self.funcs: dict[str, Func] = tmpl.funcs
        self.missing_error = tmpl.missing_key == "error"
        self.out: list[str] = []
        self.vars: list[list[Any]] = [["$", data]]
        self.depth = 0
        self.pos = 0

    def step(self) -> None:
        """Count one operation; past ``max_steps`` the render stops (e.g. templates calling each other twice)."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise self.limit(
                f"the template ran more than {self.max_steps} operations: it loops or recurses too much "
                "(raise max_steps if this template really needs more)"
            )

    def emit(self, text: str) -> None:
        """Append output, within ``max_output`` characters."""
        self.size += len(text)
        if self.size > self.max_output:
            raise self.limit(
                f"the output would exceed {self.max_output} characters (raise max_output if this is expected)"
            )
        self.out.append(text)

    def limit(self, message: str, pos: int | None = None) -> TemplateLimitError:
        line, col = location(self.tmpl.source, self.pos if pos is None else pos)
        return TemplateLimitError(message, name=self.tmpl.name, line=line, column=col)

    def fail(self, message: str, pos: int | None = None) -> TemplateExecError:
        line, col = location(self.tmpl.source, self.pos if pos is None else pos)
        return TemplateExecError(message, name=self.tmpl.name, line=line, column=col)

    # -- template calls -------------------------------------------------------------------------------------
    def call_template(self, node: n.TemplateNode, new_dot: Any) -> None:
        """``{{template "name" dot}}``: a fresh variable scope (only ``$``) and one more level of depth."""
        body = self.tmpl.compiled_defined.get(node.name)
        if body is None:
            raise self.fail(f"no such template {node.name!r}: define it with {{{{define {node.name!r}}}}}", node.pos)
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"exceeded maximum template depth ({MAX_DEPTH}): does {node.name!r} call itself?",
                            node.pos)  # fmt: skip
        self.step()
        saved = self.vars
        self.vars = [["$", new_dot]]
        self.depth += 1
        try:
            body(self, new_dot)
        finally:
            self.depth -= 1
            self.vars = saved

    # -- expressions --------------------------------------------------------------------------------------
    def pipeline(self, dot: Any, pipe: n.PipeNode) -> Any:
        value = NO_FINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        if value is None:  # a nil interface digs down to Go's invalid value
            value = MISSING
        if pipe.decl:
            for name in pipe.decl:
                if pipe.is_assign:
                    self.set_var(name, value)
                else:
                    self.vars.append([name, value])
        return value

    def command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        kind = type(first)
        self.pos = first.pos
        if kind is n.FieldNode:
            idents = first.idents
            if len(idents) == 1 and len(cmd.args) == 1 and final is NO_FINAL and type(dot) is dict:
                value = dot.get(idents[0], MISSING)  # fast path for {{ .name }}
                if value is MISSING and self.missing_error:
                    raise self.fail(f"map has no entry for key {idents[0]!r}")
                return value
            return self.field_chain(dot, dot, idents, cmd.args, final)
        if kind is n.IdentifierNode:
            return self.call(dot, first.name, cmd.args, final)
        if kind is n.VariableNode:
            return self.variable(dot, first, cmd.args, final)
        if kind is n.ChainNode:
            return self.chain(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final)
        if kind is n.PipeNode:
            return self.pipeline(dot, first)
        if kind is n.DotNode:
            return dot
        if kind is n.NilNode:
            raise self.fail("nil is not a command: nil can only be an argument, e.g. {{ eq .x nil }}")
        return first.value  # bool, number or string constant

    def not_a_function(self, args: list[Any], final: Any) -> None:
        if len(args) > 1 or final is not NO_FINAL:
            first = args[0]
            text = _node_text(self.tmpl.source, first)
            raise self.fail(f"can't give argument to non-function {text}", first.pos)

    def field_chain(self, dot: Any, receiver: Any, idents: tuple[str, ...], args: Any, final: Any) -> Any:
        for ident in idents[:-1]:
            receiver = self.field(ident, None, NO_FINAL, receiver)
        return self.field(idents[-1], args, final, receiver)

    def field(self, name: str, args: Any, final: Any, receiver: Any) -> Any:
        if receiver is MISSING:
            if self.missing_error:
                raise self.fail(f"nil data; no entry for key {name!r}")
            return MISSING
        if receiver is None:
            raise self.fail(f"nil pointer evaluating interface {{}}.{name}: the value before .{name} is null")
        if type(receiver) is dict or isinstance(receiver, Mapping):
            if (args is not None and len(args) > 1) or final is not NO_FINAL:
                raise self.fail(f"{name} is not a method but has arguments: a field cannot take arguments")
            try:
                return receiver[name]
            except KeyError:
                if self.missing_error:
                    raise self.fail(f"map has no entry for key {name!r}") from None
                return MISSING
        raise self.fail(
            f"can't evaluate field {name} in type {go_type(receiver)}: "
            f"only maps (objects) have fields, this value is {format_value(receiver)!r}"
        )

    def chain(self, dot: Any, node: n.ChainNode, args: Any, final: Any) -> Any:
        if type(node.node) is n.NilNode:
            raise self.fail("indirection through explicit nil", node.pos)
        receiver = self.arg(dot, None, node.node)
        return self.field_chain(dot, receiver, node.idents, args, final)

    def variable(self, dot: Any, node: n.VariableNode, args: Any, final: Any) -> Any:
        value = self.var_value(node.name)
        if not node.idents:
            if args is not None:
                self.not_a_function(args, final)
            return value
        return self.field_chain(dot, value, node.idents, args, final)

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise self.fail(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        raise self.fail(f"undefined variable: {name}")

    def call(self, dot: Any, name: str, args: Any, final: Any) -> Any:
        func = self.funcs[name]
        pos = self.pos
        call_args = args[1:] if args else []
        num_in = len(call_args) + (final is not NO_FINAL)
        nparams = len(func.params)
        if func.variadic is not None:
            if num_in < nparams:
                raise self.fail(f"wrong number of args for {name}: want at least {nparams} got {len(call_args)}", pos)
        elif num_in != nparams:
            raise self.fail(f"wrong number of args for {name}: want {nparams} got {num_in}", pos)
        if name in ("and", "or") and func is BUILTINS[name]:
            want = name == "or"
            value: Any = MISSING
            for arg in call_args:
                value = self.arg(dot, VALUE, arg)
                if truth(value) == want:
                    return value
            if final is not NO_FINAL:
                value = coerce(final, VALUE)
            return value
        argv = []
        try:
            for i, arg in enumerate(call_args):
                argv.append(self.arg(dot, func.params[i] if i < nparams else func.variadic, arg))
            if final is not NO_FINAL:
                kind = func.params[num_in - 1] if num_in - 1 < nparams else func.variadic
                assert kind is not None  # the arity check above admits extra arguments only when variadic
                argv.append(coerce(final, kind))
            self.step()
            return func.fn(*argv)
        except FuncError as err:
            raise self.fail(f"error calling {name}: {err}", pos) from None
        except ValueTooLarge as err:
            raise self.limit(f"error calling {name}: {err}", pos) from None

    def arg(self, dot: Any, kind: str | None, node: Any) -> Any:
        self.pos = node.pos
        ntype = type(node)
        if ntype is n.FieldNode:
            idents = node.idents
            if len(idents) == 1 and type(dot) is dict and not self.missing_error:
                value = dot.get(idents[0], MISSING)  # fast path for a plain .field argument
            else:
                value = self.field_chain(dot, dot, idents, None, NO_FINAL)
        elif ntype is n.VariableNode:
            value = self.variable(dot, node, None, NO_FINAL)
        elif ntype is n.PipeNode:
            value = self.pipeline(dot, node)
        elif ntype is n.IdentifierNode:
            value = self.call(dot, node.name, None, NO_FINAL)
        elif ntype is n.ChainNode:
            value = self.chain(dot, node, None, NO_FINAL)
        elif ntype is n.DotNode:
            value = dot
        elif ntype is n.NilNode:
            if kind in (STRING, INT, "bool"):
                raise FuncError(f"cannot assign nil to {kind}")
            return MISSING if kind == VALUE else None
        else:
            value = node.value
            if kind == STRING and ntype is not n.StringNode:
                raise FuncError(f"expected string; found {_node_text(self.tmpl.source, node)}")
            if kind == INT and not (ntype is n.NumberNode and isinstance(value, int)):
                raise FuncError(f"expected integer; found {_node_text(self.tmpl.source, node)}")
        if kind is None:
            return value
        return coerce(value, kind if kind != ANY else ANY)


def _node_text(source: str, node: Any) -> str:
    """A short excerpt of the source at a node, for messages."""
    end = node.pos
    while end < len(source) and source[end] not in " \t\r\n|)}":
        end += 1
    return source[node.pos : end] or "value"
