"""Recursive-descent parser for Go ``text/template`` that applies Go's parse-time checks.

Like Go, it rejects unknown functions and undeclared variables before any data is seen, so a typo is
reported when the task starts rather than on the ten-thousandth profile.
"""

from __future__ import annotations

import math
from collections.abc import Container

from airflow_provider_lytics.templating import lexer as lx
from airflow_provider_lytics.templating import nodes as n
from airflow_provider_lytics.templating.errors import TemplateSyntaxError, location
from airflow_provider_lytics.templating.literals import char_value, number_value

CONTROL_WORDS = frozenset({"if", "range", "with", "template", "block", "else", "end", "break", "continue"})
NON_EXECUTABLE = (n.BoolNode, n.DotNode, n.NilNode, n.NumberNode, n.StringNode)
OPERAND_START = frozenset({lx.BOOL, lx.CHAR, lx.DOT, lx.FIELD, lx.IDENT, lx.NUMBER, lx.STRING, lx.VARIABLE, lx.LPAREN})


def describe(token: lx.Token) -> str:
    if token.kind == lx.EOF:
        return "end of template"
    if token.kind == lx.RIGHT:
        return "}}"
    if token.kind == lx.KEYWORD:
        return f"<{token.value}>"
    return f"{token.value!r}" if token.kind != lx.SPACE else "space"


class Parser:
    """Parses one source into a main tree plus the templates it defines (``define``/``block``)."""

    def __init__(self, source: str, name: str, funcs: Container[str]) -> None:
        self.src = source
        self.name = name
        self.funcs = funcs
        self.tokens = lx.Lexer(source, name).tokens()
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.defined: dict[str, n.ListNode] = {}

    # -- token helpers ------------------------------------------------------------------------------------
    def error(self, message: str, pos: int) -> TemplateSyntaxError:
        line, col = location(self.src, pos)
        return TemplateSyntaxError(message, name=self.name, line=line, column=col)

    def next(self) -> lx.Token:
        tok = self.tokens[self.i]
        if tok.kind != lx.EOF:
            self.i += 1
        return tok

    def peek(self) -> lx.Token:
        return self.tokens[self.i]

    def next_non_space(self) -> lx.Token:
        tok = self.next()
        while tok.kind == lx.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> lx.Token:
        j = self.i
        while self.tokens[j].kind == lx.SPACE:
            j += 1
        return self.tokens[j]

    def backup(self) -> None:
        self.i -= 1

    def expect(self, kind: str, context: str) -> lx.Token:
        tok = self.next_non_space()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: lx.Token, context: str) -> TemplateSyntaxError:
        if tok.kind == lx.EOF:
            return self.error(f"unexpected end of template in {context}: an action is not closed", tok.pos)
        return self.error(f"unexpected {describe(tok)} in {context}", tok.pos)

    # -- top level ----------------------------------------------------------------------------------------
    def parse(self) -> tuple[n.ListNode, dict[str, n.ListNode]]:
        root = n.ListNode(0)
        while self.peek().kind != lx.EOF:
            if self.peek().kind == lx.LEFT:
                left = self.next()
                word = self.peek_non_space()
                if word.kind == lx.KEYWORD and word.value == "define":
                    self.next_non_space()
                    self.parse_definition(left.pos)
                    continue
                self.backup()
            node, end = self.text_or_action()
            if end is not None:
                raise self.error(
                    f"unexpected {{{{{end}}}}}: there is no {{{{if}}}}, {{{{range}}}}, {{{{with}}}}, "
                    f"{{{{define}}}} or {{{{block}}}} for it to close",
                    node,
                )
            if node is not None:
                root.nodes.append(node)
        return root, self.defined

    def parse_definition(self, pos: int) -> None:
        tok = self.expect(lx.STRING, "define clause")
        self.expect(lx.RIGHT, "define clause")
        saved_vars, self.vars = self.vars, ["$"]
        body, end, end_pos = self.item_list("define")
        if end != "end":
            raise self.error(
                f'expected {{{{end}}}} to close {{{{define "{tok.value}"}}}}; found {{{{{end}}}}}', end_pos
            )
        self.vars = saved_vars
        self.add_definition(tok.value, body, pos)

    def add_definition(self, name: str, body: n.ListNode, pos: int) -> None:
        if name in self.defined and self.defined[name].nodes and body.nodes:
            raise self.error(f"template {name!r} is defined twice", pos)
        if name not in self.defined or body.nodes:
            self.defined[name] = body

    def item_list(self, context: str) -> tuple[n.ListNode, str, int]:
        """Nodes up to ``{{end}}`` or ``{{else}}``; returns the list, which of the two ended it, and where."""
        body = n.ListNode(self.peek().pos)
        while True:
            if self.peek_non_space().kind == lx.EOF:
                raise self.error(f"unexpected end of template: {{{{{context}}}}} is missing its {{{{end}}}}",
                                 self.peek().pos)  # fmt: skip
            node, end = self.text_or_action()
            if end is not None:
                return body, end, node
            if node is not None:
                body.nodes.append(node)

    def text_or_action(self):
        """One text or action; for ``{{end}}``/``{{else}}`` returns (position, keyword) instead of a node."""
        tok = self.next_non_space() if self.peek().kind == lx.SPACE else self.next()
        if tok.kind == lx.TEXT:
            return n.TextNode(tok.pos, tok.value), None
        if tok.kind == lx.LEFT:
            return self.action(tok.pos)
        raise self.unexpected(tok, "input")

    def action(self, pos: int):
        tok = self.next_non_space()
        if tok.kind == lx.KEYWORD and tok.value in CONTROL_WORDS:
            word = tok.value
            if word == "end":
                self.expect(lx.RIGHT, "end")
                return pos, "end"
            if word == "else":
                following = self.peek_non_space()
                if following.kind == lx.KEYWORD and following.value == "if":
                    return pos, "else if"
                self.expect(lx.RIGHT, "else")
                return pos, "else"
            if word == "if":
                return self.if_control(tok.pos), None
            if word == "with":
                return self.control(n.WithNode, tok.pos, "with", allow_else_if=False), None
            if word == "range":
                return self.control(n.RangeNode, tok.pos, "range", allow_else_if=False), None
            if word == "template":
                return self.template_control(tok.pos), None
            if word == "block":
                return self.block_control(tok.pos), None
            if word in ("break", "continue"):
                if self.range_depth == 0:
                    raise self.error(f"{{{{{word}}}}} is only allowed inside {{{{range}}}}", tok.pos)
                self.expect(lx.RIGHT, word)
                return (n.BreakNode(tok.pos) if word == "break" else n.ContinueNode(tok.pos)), None
        if tok.kind == lx.KEYWORD and tok.value == "define":
            raise self.error("{{define}} is only allowed at the top level of a template, not inside other actions",
                             tok.pos)  # fmt: skip
        self.backup()
        return n.ActionNode(pos, self.pipeline("command", lx.RIGHT)), None

    def if_control(self, pos: int) -> n.IfNode:
        return self.control(n.IfNode, pos, "if", allow_else_if=True)

    def control(self, cls, pos: int, context: str, *, allow_else_if: bool):
        mark = len(self.vars)
        pipe = self.pipeline(context, lx.RIGHT)
        if context == "range":
            self.range_depth += 1
        body, end, end_pos = self.item_list(context)
        if context == "range":
            self.range_depth -= 1
        else_body = None
        if end == "else if":
            if not allow_else_if:
                raise self.error(f"{{{{else if}}}} is only allowed after {{{{if}}}}, not in {{{{{context}}}}}", end_pos)
            self.next_non_space()  # the "if"
            else_body = n.ListNode(end_pos, [self.if_control(end_pos)])  # shares the final {{end}}
        elif end == "else":
            else_body, end, end_pos = self.item_list(context)
            if end != "end":
                raise self.error(f"expected {{{{end}}}} after {{{{else}}}} in {{{{{context}}}}}; found {{{{{end}}}}}",
                                 end_pos)  # fmt: skip
        del self.vars[mark:]
        return cls(pos, pipe, body, else_body)

    def template_control(self, pos: int) -> n.TemplateNode:
        tok = self.next_non_space()
        if tok.kind != lx.STRING:
            raise self.error('{{template}} needs a quoted name, e.g. {{template "greeting" .}}', tok.pos)
        pipe = None
        if self.peek_non_space().kind != lx.RIGHT:
            pipe = self.pipeline("template clause", lx.RIGHT)
        else:
            self.next_non_space()
        return n.TemplateNode(pos, tok.value, pipe)

    def block_control(self, pos: int) -> n.TemplateNode:
        tok = self.next_non_space()
        if tok.kind != lx.STRING:
            raise self.error('{{block}} needs a quoted name, e.g. {{block "greeting" .}}...{{end}}', tok.pos)
        pipe = self.pipeline("block clause", lx.RIGHT)
        saved_vars, self.vars = self.vars, ["$"]
        body, end, end_pos = self.item_list("block")
        if end != "end":
            raise self.error(f"expected {{{{end}}}} to close {{{{block}}}}; found {{{{{end}}}}}", end_pos)
        self.vars = saved_vars
        self.add_definition(tok.value, body, pos)
        return n.TemplateNode(pos, tok.value, pipe)

    # -- pipelines ----------------------------------------------------------------------------------------
    def pipeline(self, context: str, end: str) -> n.PipeNode:
        pipe = n.PipeNode(self.peek_non_space().pos)
        self.declarations(pipe, context)
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                self.check_pipeline(pipe, context, tok.pos)
                return pipe
            if tok.kind in OPERAND_START or (tok.kind == lx.KEYWORD and tok.value == "nil"):
                self.backup()
                pipe.cmds.append(self.command())
                continue
            if tok.kind == lx.RIGHT and end == lx.RPAREN:
                raise self.error("unclosed left paren: add ) before }}", tok.pos)
            raise self.unexpected(tok, context)

    def declarations(self, pipe: n.PipeNode, context: str) -> None:
        while True:
            start = self.i
            var = self.peek_non_space()
            if var.kind != lx.VARIABLE:
                return
            self.next_non_space()
            after = self.peek_non_space()
            if after.kind in (lx.DECLARE, lx.ASSIGN):
                self.next_non_space()
                pipe.is_assign = after.kind == lx.ASSIGN
                pipe.decl.append(var.value)
                if pipe.is_assign:
                    if var.value not in self.vars:
                        raise self.error(f"undefined variable {var.value!r}: declare it first with {var.value} :=",
                                         var.pos)  # fmt: skip
                else:
                    self.vars.append(var.value)
                return
            if after.kind == lx.COMMA:
                self.next_non_space()
                pipe.decl.append(var.value)
                self.vars.append(var.value)
                if context != "range" or len(pipe.decl) > 1:
                    raise self.error(f"too many declarations in {context}", after.pos)
                if self.peek_non_space().kind != lx.VARIABLE:
                    raise self.error("range can only initialize variables: write {{range $i, $v := ...}}", after.pos)
                continue
            self.i = start
            return

    def check_pipeline(self, pipe: n.PipeNode, context: str, pos: int) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}", pos)
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], NON_EXECUTABLE):
                raise self.error(
                    f"non executable command in pipeline stage {stage}: after | put a function name such as "
                    "default or upper",
                    cmd.pos,
                )

    def command(self) -> n.CommandNode:
        cmd = n.CommandNode(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            while self.peek().kind == lx.SPACE:
                self.next()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == lx.SPACE:
                continue
            if tok.kind in (lx.RIGHT, lx.RPAREN):
                self.backup()
            elif tok.kind != lx.PIPE:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command: nothing before or after |", cmd.pos)
        return cmd

    def operand(self):
        node = self.term()
        if node is None:
            return None
        if self.peek().kind != lx.FIELD:
            return node
        idents: list[str] = []
        while self.peek().kind == lx.FIELD:
            idents.append(self.next().value[1:])
        if isinstance(node, n.FieldNode):
            return n.FieldNode(node.pos, node.idents + tuple(idents))
        if isinstance(node, n.VariableNode):
            return n.VariableNode(node.pos, node.name, node.idents + tuple(idents))
        if isinstance(node, (n.BoolNode, n.StringNode, n.NumberNode, n.NilNode, n.DotNode)):
            raise self.error(f"unexpected . after term {self.src[node.pos : self.peek().pos]!r}", node.pos)
        return n.ChainNode(node.pos, node, tuple(idents))

    def term(self):
        tok = self.next_non_space()
        kind = tok.kind
        if kind == lx.IDENT:
            if tok.value not in self.funcs:
                hint = _did_you_mean(tok.value, self.funcs) or (
                    f" (to insert the profile field, write .{tok.value} with a leading dot)"
                )
                raise self.error(f"function {tok.value!r} not defined{hint}", tok.pos)
            return n.IdentifierNode(tok.pos, tok.value)
        if kind == lx.DOT:
            return n.DotNode(tok.pos)
        if kind == lx.KEYWORD and tok.value == "nil":
            return n.NilNode(tok.pos)
        if kind == lx.VARIABLE:
            if tok.value not in self.vars:
                raise self.error(f"undefined variable {tok.value!r}", tok.pos)
            return n.VariableNode(tok.pos, tok.value)
        if kind == lx.FIELD:
            return n.FieldNode(tok.pos, (tok.value[1:],))
        if kind == lx.BOOL:
            return n.BoolNode(tok.pos, tok.value == "true")
        if kind == lx.NUMBER:
            if tok.value.endswith("i") and not tok.value.lower().startswith(("0x", "+0x", "-0x")):
                raise self.error(f"complex number {tok.value!r} is not supported in profile templates", tok.pos)
            try:
                value = number_value(tok.value)
            except ValueError:
                raise self.error(f"bad number syntax: {tok.value!r}", tok.pos) from None
            except OverflowError:  # float.fromhex of a hex float beyond float64 (0x1p1024)
                value = math.inf
            if isinstance(value, float) and math.isinf(value):
                raise self.error(f"illegal number syntax: {tok.value!r} is too large", tok.pos)
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise self.error(f"integer overflow: {tok.value!r} does not fit in 64 bits", tok.pos)
            return n.NumberNode(tok.pos, value, tok.value)
        if kind == lx.CHAR:
            try:
                return n.NumberNode(tok.pos, char_value(tok.value), tok.value)
            except ValueError as err:
                raise self.error(str(err), tok.pos) from None
        if kind == lx.LPAREN:
            return self.pipeline("parenthesized pipeline", lx.RPAREN)
        if kind == lx.STRING:
            return n.StringNode(tok.pos, tok.value)
        self.backup()
        return None


def _did_you_mean(name: str, funcs: Container[str]) -> str:
    import difflib

    try:
        candidates = list(funcs)  # type: ignore[call-overload]
    except TypeError:
        return ""
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse(source: str, name: str, funcs: Container[str]) -> tuple[n.ListNode, dict[str, n.ListNode]]:
    """Parse ``source``; returns the main tree and the named templates it defines."""
    if not isinstance(source, str):
        raise TypeError(f"a template must be a str, got {type(source).__name__}")
    try:
        return Parser(source, name, funcs).parse()
    except RecursionError:
        raise TemplateSyntaxError("template nests too deeply (too many parentheses or blocks)", name=name) from None
