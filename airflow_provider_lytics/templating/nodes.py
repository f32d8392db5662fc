"""The parse tree of a Go template. Nodes are plain, immutable-by-convention objects with a source offset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class TextNode:
    pos: int
    text: str


@dataclass(eq=False)
class FieldNode:
    """``.a.b.c``: a chain of map keys from dot."""

    pos: int
    idents: tuple[str, ...]


@dataclass(eq=False)
class VariableNode:
    """``$x`` or ``$x.a.b``."""

    pos: int
    name: str
    idents: tuple[str, ...] = ()


@dataclass(eq=False)
class DotNode:
    pos: int


@dataclass(eq=False)
class NilNode:
    pos: int


@dataclass(eq=False)
class BoolNode:
    pos: int
    value: bool


@dataclass(eq=False)
class NumberNode:
    pos: int
    value: int | float
    text: str


@dataclass(eq=False)
class StringNode:
    pos: int
    value: str


@dataclass(eq=False)
class IdentifierNode:
    """A function name."""

    pos: int
    name: str


@dataclass(eq=False)
class ChainNode:
    """``(pipeline).a.b``: fields applied to the result of a parenthesized pipeline."""

    pos: int
    node: Any
    idents: tuple[str, ...]


@dataclass(eq=False)
class CommandNode:
    pos: int
    args: list[Any]


@dataclass(eq=False)
class PipeNode:
    """``$x := cmd | cmd``: optional variable declarations (or assignment) and a list of commands."""

    pos: int
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)


@dataclass(eq=False)
class ActionNode:
    pos: int
    pipe: PipeNode


@dataclass(eq=False)
class ListNode:
    pos: int
    nodes: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class IfNode:
    pos: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass(eq=False)
class WithNode:
    pos: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass(eq=False)
class RangeNode:
    pos: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass(eq=False)
class TemplateNode:
    """``{{template "name" pipeline}}`` (``{{block}}`` parses to a define plus one of these)."""

    pos: int
    name: str
    pipe: PipeNode | None


@dataclass(eq=False)
class BreakNode:
    pos: int


@dataclass(eq=False)
class ContinueNode:
    pos: int


Node = TextNode | ActionNode | IfNode | WithNode | RangeNode | TemplateNode | BreakNode | ContinueNode | ListNode
