"""Turns a parse tree into nested Python closures, so rendering does no per-node dispatch.

Statements compile to ``fn(run, dot) -> None`` and pipelines to ``fn(run, dot) -> value``; the semantics
(field lookup, calls, argument checks) stay in :class:`~.exec.Run`, shared with the interpreted paths used
for parenthesized arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_lytics.templating import nodes as n
from airflow_provider_lytics.templating.exec import NO_FINAL, Break, Continue, Run
from airflow_provider_lytics.templating.values import MISSING, format_value, go_type, is_list, sorted_keys, truth

Stmt = Callable[[Run, Any], None]
Expr = Callable[[Run, Any], Any]
Cmd = Callable[[Run, Any, Any], Any]


def compile_body(body: n.ListNode) -> Stmt:
    fns = [compile_stmt(child) for child in body.nodes]
    if len(fns) == 1:
        return fns[0]

    def run_list(run: Run, dot: Any) -> None:
        for fn in fns:
            fn(run, dot)

    return run_list


def compile_stmt(node: Any) -> Stmt:
    kind = type(node)
    if kind is n.TextNode:
        text = node.text

        def text_stmt(run: Run, dot: Any) -> None:
            run.out.append(text)

        return text_stmt
    if kind is n.ActionNode:
        pipe = compile_pipe(node.pipe)
        if node.pipe.decl:

            def declare_stmt(run: Run, dot: Any) -> None:
                pipe(run, dot)

            return declare_stmt

        def print_stmt(run: Run, dot: Any) -> None:
            value = pipe(run, dot)
            run.out.append(value if type(value) is str else format_value(value))

        return print_stmt
    if kind is n.IfNode or kind is n.WithNode:
        return _compile_if(node, with_=kind is n.WithNode)
    if kind is n.RangeNode:
        return _compile_range(node)
    if kind is n.TemplateNode:
        pipe_fn = compile_pipe(node.pipe) if node.pipe is not None else None

        def template_stmt(run: Run, dot: Any) -> None:
            new_dot = pipe_fn(run, dot) if pipe_fn is not None else MISSING
            run.call_template(node, new_dot)

        return template_stmt
    if kind is n.BreakNode:

        def break_stmt(run: Run, dot: Any) -> None:
            raise Break

        return break_stmt
    if kind is n.ContinueNode:

        def continue_stmt(run: Run, dot: Any) -> None:
            raise Continue

        return continue_stmt
    raise TypeError(f"unknown node {kind.__name__}")  # pragma: no cover - the parser produces no other nodes


def _compile_if(node: Any, *, with_: bool) -> Stmt:
    pipe = compile_pipe(node.pipe)
    body = compile_body(node.body)
    else_body = compile_body(node.else_body) if node.else_body is not None else None

    def if_stmt(run: Run, dot: Any) -> None:
        mark = len(run.vars)
        value = pipe(run, dot)
        if truth(value):
            body(run, value if with_ else dot)
        elif else_body is not None:
            else_body(run, dot)
        del run.vars[mark:]

    return if_stmt


def _compile_range(node: n.RangeNode) -> Stmt:
    pipe = compile_pipe(node.pipe)
    body = compile_body(node.body)
    else_body = compile_body(node.else_body) if node.else_body is not None else None
    ndecl = len(node.pipe.decl)

    def range_stmt(run: Run, dot: Any) -> None:
        mark = len(run.vars)
        value = pipe(run, dot)
        inner = len(run.vars)
        if is_list(value):
            items: Any = enumerate(value)
            empty = not value
        elif isinstance(value, Mapping):
            items = ((key, value[key]) for key in sorted_keys(value))
            empty = not value
        elif value is MISSING or value is None:
            items, empty = (), True
        else:
            raise run.fail(
                f"range can't iterate over {format_value(value)}: range needs a list or a map, got {go_type(value)}",
                node.pos,
            )
        variables = run.vars
        try:
            for index, elem in items:
                if ndecl:
                    variables[-1][1] = elem
                    if ndecl > 1:
                        variables[-2][1] = index
                try:
                    body(run, elem)
                except Continue:
                    pass
                finally:
                    del variables[inner:]
        except Break:
            pass
        if empty and else_body is not None:
            else_body(run, dot)
        del run.vars[mark:]

    return range_stmt


def compile_pipe(pipe: n.PipeNode) -> Expr:
    cmds = [compile_cmd(cmd) for cmd in pipe.cmds]
    decl, is_assign = list(pipe.decl), pipe.is_assign
    if len(cmds) == 1 and not decl:
        only = cmds[0]

        def single(run: Run, dot: Any) -> Any:
            value = only(run, dot, NO_FINAL)
            return MISSING if value is None else value

        return single

    def pipeline(run: Run, dot: Any) -> Any:
        value = NO_FINAL
        for cmd in cmds:
            value = cmd(run, dot, value)
        if value is None:  # a nil interface digs down to Go's invalid value
            value = MISSING
        for name in decl:
            if is_assign:
                run.set_var(name, value)
            else:
                run.vars.append([name, value])
        return value

    return pipeline


def compile_cmd(cmd: n.CommandNode) -> Cmd:
    first = cmd.args[0]
    args = cmd.args
    pos = first.pos
    kind = type(first)
    if kind is n.FieldNode:
        idents = first.idents
        if len(idents) == 1 and len(args) == 1:
            key = idents[0]

            def field_cmd(run: Run, dot: Any, final: Any) -> Any:
                if final is NO_FINAL and type(dot) is dict and not run.missing_error:
                    return dot.get(key, MISSING)
                run.pos = pos
                return run.field_chain(dot, dot, idents, args, final)

            return field_cmd

        def chain_cmd(run: Run, dot: Any, final: Any) -> Any:
            run.pos = pos
            return run.field_chain(dot, dot, idents, args, final)

        return chain_cmd
    if kind is n.IdentifierNode:
        name = first.name

        def call_cmd(run: Run, dot: Any, final: Any) -> Any:
            run.pos = pos
            return run.call(dot, name, args, final)

        return call_cmd

    if kind is n.VariableNode and not first.idents and len(args) == 1:
        var = first.name

        def variable_cmd(run: Run, dot: Any, final: Any) -> Any:
            if final is not NO_FINAL:
                run.pos = pos
                run.not_a_function(args, final)
            for entry in reversed(run.vars):
                if entry[0] == var:
                    return entry[1]
            run.pos = pos
            return run.var_value(var)

        return variable_cmd

    def other_cmd(run: Run, dot: Any, final: Any) -> Any:
        return run.command(dot, cmd, final)

    return other_cmd
