"""Turns a parse tree into nested Python closures, so rendering does no per-node dispatch.

Statements compile to ``fn(run, dot) -> None`` and pipelines to ``fn(run, dot) -> value``; the semantics
(field lookup, calls, argument checks) stay in :class:`~.exec.Run`, shared with the interpreted paths used
for parenthesized arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_lytics.templating import nodes as n
from airflow_provider_lytics.templating.errors import ValueTooLarge
from airflow_provider_lytics.templating.exec import NO_FINAL, Break, Continue, Run
from airflow_provider_lytics.templating.funcs import ANY, BUILTINS, STRING, VALUE, Func, FuncError, coerce
from airflow_provider_lytics.templating.values import MISSING, format_value, go_type, is_list, sorted_keys, truth

Stmt = Callable[[Run, Any], None]
Expr = Callable[[Run, Any], Any]
Cmd = Callable[[Run, Any, Any], Any]


def compile_body(body: n.ListNode, funcs: Mapping[str, Func]) -> Stmt:
    fns = [compile_stmt(child, funcs) for child in body.nodes]
    if len(fns) == 1:
        return fns[0]

    def run_list(run: Run, dot: Any) -> None:
        for fn in fns:
            fn(run, dot)

    return run_list


def compile_stmt(node: Any, funcs: Mapping[str, Func]) -> Stmt:
    kind = type(node)
    if kind is n.TextNode:
        text = node.text

        def text_stmt(run: Run, dot: Any) -> None:
            run.step()
            run.emit(text)

        return text_stmt
    if kind is n.ActionNode:
        pipe = compile_pipe(node.pipe, funcs)
        if node.pipe.decl:

            def declare_stmt(run: Run, dot: Any) -> None:
                pipe(run, dot)

            return declare_stmt

        def print_stmt(run: Run, dot: Any) -> None:
            run.step()
            value = pipe(run, dot)
            run.emit(value if type(value) is str else format_value(value))

        return print_stmt
    if kind is n.IfNode or kind is n.WithNode:
        return _compile_if(node, funcs, with_=kind is n.WithNode)
    if kind is n.RangeNode:
        return _compile_range(node, funcs)
    if kind is n.TemplateNode:
        pipe_fn = compile_pipe(node.pipe, funcs) if node.pipe is not None else None

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


def _compile_if(node: Any, funcs: Mapping[str, Func], *, with_: bool) -> Stmt:
    pipe = compile_pipe(node.pipe, funcs)
    body = compile_body(node.body, funcs)
    else_body = compile_body(node.else_body, funcs) if node.else_body is not None else None

    def if_stmt(run: Run, dot: Any) -> None:
        mark = len(run.vars)
        value = pipe(run, dot)
        if truth(value):
            body(run, value if with_ else dot)
        elif else_body is not None:
            else_body(run, dot)
        del run.vars[mark:]

    return if_stmt


def _compile_range(node: n.RangeNode, funcs: Mapping[str, Func]) -> Stmt:
    pipe = compile_pipe(node.pipe, funcs)
    body = compile_body(node.body, funcs)
    else_body = compile_body(node.else_body, funcs) if node.else_body is not None else None
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
                run.step()
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


def compile_pipe(pipe: n.PipeNode, funcs: Mapping[str, Func]) -> Expr:
    cmds = [compile_cmd(cmd, funcs, i > 0) for i, cmd in enumerate(pipe.cmds)]
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


def compile_cmd(cmd: n.CommandNode, funcs: Mapping[str, Func], has_final: bool) -> Cmd:
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
        return _compile_call(first.name, pos, args, funcs, has_final)
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


def _compile_call(name: str, pos: int, args: list[Any], funcs: Mapping[str, Func], has_final: bool) -> Cmd:
    """A function call with its arity checked once and each argument's evaluator chosen up front."""
    func = funcs[name]
    call_args = args[1:]
    nparams = len(func.params)
    num_in = len(call_args) + has_final
    if func.variadic is not None:
        arity_error = f"wrong number of args for {name}: want at least {nparams} got {len(call_args)}" \
            if num_in < nparams else None  # fmt: skip
    else:
        arity_error = f"wrong number of args for {name}: want {nparams} got {num_in}" if num_in != nparams else None
    if arity_error is not None:

        def bad_arity(run: Run, dot: Any, final: Any) -> Any:
            raise run.fail(arity_error, pos)

        return bad_arity
    if name in ("and", "or") and func is BUILTINS[name]:

        def and_or(run: Run, dot: Any, final: Any) -> Any:
            run.pos = pos
            return run.call(dot, name, args, final)

        return and_or
    kinds = [func.params[i] if i < nparams else func.variadic for i in range(len(call_args))]
    evaluators = [_compile_arg(node, kind) for node, kind in zip(call_args, kinds, strict=True)]
    final_kind = (func.params[num_in - 1] if num_in - 1 < nparams else func.variadic) if has_final else None
    fn = func.fn

    def call_cmd(run: Run, dot: Any, final: Any) -> Any:
        run.pos = pos
        run.step()
        try:
            argv = [evaluate(run, dot) for evaluate in evaluators]
            if final is not NO_FINAL:
                argv.append(coerce(final, final_kind))  # type: ignore[arg-type]
            result = fn(*argv)
        except FuncError as err:
            raise run.fail(f"error calling {name}: {err}", pos) from None
        except ValueTooLarge as err:
            raise run.limit(f"error calling {name}: {err}", pos) from None
        if type(result) is str and len(result) > run.max_output:
            raise run.limit(f"error calling {name}: the result is longer than {run.max_output} characters", pos)
        return result

    return call_cmd


def _compile_arg(node: Any, kind: str | None) -> Expr:
    """An argument evaluator: literals are checked against the parameter once, plain fields read directly."""
    ntype = type(node)
    if ntype in (n.StringNode, n.NumberNode, n.BoolNode) and kind in (ANY, VALUE):
        value = node.value

        def constant(run: Run, dot: Any) -> Any:
            return value

        return constant
    if ntype is n.StringNode and kind == STRING:
        text = node.value

        def string_constant(run: Run, dot: Any) -> Any:
            return text

        return string_constant
    if ntype is n.FieldNode and len(node.idents) == 1:
        key = node.idents[0]

        def field_arg(run: Run, dot: Any) -> Any:
            if type(dot) is dict and not run.missing_error:
                return coerce(dot.get(key, MISSING), kind)  # type: ignore[arg-type]
            return run.arg(dot, kind, node)

        return field_arg

    def general_arg(run: Run, dot: Any) -> Any:
        return run.arg(dot, kind, node)

    return general_arg
