"""Compiling: the :class:`Compiler` turns a syntax tree into nested closures, checking names and types as it goes;
:class:`Expression` is the result, run through a fused chain where it is one, and :func:`compile_expression` and
:func:`compile_condition` go from source to expression."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.expressions.chains import _plan_chain
from engine.expressions.errors import ExpressionError
from engine.expressions.functions import _COLLECTIONS, _MATH, _extremum
from engine.expressions.lexer import _PYTHONISMS, COMPARISONS
from engine.expressions.names import NameInfo, Resolver
from engine.expressions.parser import (
    Binary,
    Call,
    Conditional,
    Identifier,
    Literal,
    Logic,
    Node,
    Unary,
    parse,
    parse_condition,
)
from engine.expressions.runtime import (
    _ARITHMETIC,
    _all_of,
    _checked_number,
    _compare,
    _constant,
    _field_reader,
    _first_of,
    _fold,
    _truth,
)
from engine.expressions.values import ANY, BOOL, EVENT, NUMBER, OBJECT, TEXT, Compiled, Fn
from engine.problems import did_you_mean

MAX_DEPTH = 64
"""Syntax trees deeper than this are refused (keeps evaluation's stack small)."""
_SIGNAL_TYPES = {"float": NUMBER, "int": NUMBER, "bool": BOOL, "str": TEXT, "event": EVENT, "object": OBJECT}


@dataclass(slots=True)
class _Scope:
    """Inside ``any``/``all``/``count``: plain names are fields of the current item."""

    slot: list[Any]
    fields: Mapping[str, str] | None


@dataclass
class Compiler:
    source: str
    resolver: Resolver
    names: set[str] = field(default_factory=set)
    time_dependent: bool = False
    scopes: list[_Scope] = field(default_factory=list)
    depth: int = 0

    def compile(self, node: Node) -> Compiled:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression too long or nested (more than {MAX_DEPTH} levels)", node.offset)
        try:
            return self._compile(node)
        finally:
            self.depth -= 1

    def _compile(self, node: Node) -> Compiled:
        if isinstance(node, Literal):
            return _constant(node.value, node.type)
        if isinstance(node, Identifier):
            return self.name(node)
        if isinstance(node, Unary):
            return self.negation(node) if node.op == "not" else self.minus(node)
        if isinstance(node, Binary):
            return self.comparison(node) if node.op in COMPARISONS else self.arithmetic(node)
        if isinstance(node, Logic):
            return self.logic(node)
        if isinstance(node, Conditional):
            return self.conditional(node)
        if isinstance(node, Call):
            return self.call(node)
        raise TypeError(f"not a syntax node: {node!r}")  # unreachable: the parser makes only the nodes above

    # --- names ---

    def name(self, node: Identifier) -> Compiled:
        found = self.lookup(node)
        if isinstance(found, Compiled):
            return found
        kind = _SIGNAL_TYPES.get(found.type, ANY)
        if kind == EVENT:
            raise ExpressionError(
                f"`{node.name}` is an event: it has no value",
                node.offset,
                len(node.name),
                hint=f"for “happened recently” write `since({node.name}) < 2s`",
            )
        if kind == OBJECT:
            raise ExpressionError(
                f"`{node.name}` is a collection",
                node.offset,
                len(node.name),
                hint=f"use it in `count({node.name})`, `any({node.name}, ...)` or `all({node.name}, ...)`",
            )
        cell = found.cell
        if cell is not None:
            slot = (operator.is_, cell, True) if kind == BOOL else None
            return Compiled(lambda: cell.value, kind, maybe_none=True, cell=cell, slot=slot)
        return Compiled(found.get, kind, maybe_none=True)

    def lookup(self, node: Identifier) -> NameInfo | Compiled:
        """A field of the current item (as compiled code), or a signal's NameInfo."""
        name = node.name
        if "." not in name and not name.startswith("_"):
            for scope in reversed(self.scopes):
                if scope.fields is None or name in scope.fields:
                    kind = ANY if scope.fields is None else _SIGNAL_TYPES.get(scope.fields[name], ANY)
                    return Compiled(_field_reader(scope.slot, name), kind, maybe_none=True)
        info = None if any(part.startswith("__") for part in name.split(".")) else self.resolver.resolve(name)
        if info is None:
            raise self.unknown(node)
        self.names.add(info.key or name)
        return info

    def signal(self, node: Node, function: str) -> NameInfo:
        """The signal named as the argument of ``since``/``stale``/``any``..., which must be a plain name."""
        if not isinstance(node, Identifier):
            raise ExpressionError(
                f"`{function}` needs a signal name here", node.offset, node.end - node.offset, hint=_USAGE[function]
            )
        found = self.lookup(node)
        if isinstance(found, Compiled):
            raise ExpressionError(
                f"`{node.name}` is a field of each item here, not a signal", node.offset, len(node.name)
            )
        return found

    def unknown(self, node: Identifier) -> ExpressionError:
        choices = list(self.resolver.names())
        for scope in self.scopes:
            choices.extend(scope.fields or ())
        hint = _PYTHONISMS.get(node.name) or did_you_mean(node.name, choices)
        return ExpressionError(f"unknown name `{node.name}`", node.offset, len(node.name), hint=hint)

    # --- operators ---

    def minus(self, node: Unary) -> Compiled:
        operand = self.numeric(node.operand, "-")
        f = operand.fn
        return _fold(Compiled(lambda: -f(), NUMBER, const=operand.const))

    def negation(self, node: Unary) -> Compiled:
        operand = self.compile(node.operand)
        f, cell, stale_cell = operand.fn, operand.cell, operand.stale_cell
        if stale_cell is not None:
            return Compiled(lambda: not stale_cell.stale, BOOL, watched=stale_cell)
        if cell is not None:

            def not_cell() -> Any:
                value = cell.value
                return None if value is None else not value

            slot = (operator.is_, cell, False) if operand.type == BOOL else None
            return Compiled(not_cell, BOOL, maybe_none=True, slot=slot)
        if not operand.maybe_none:
            return _fold(Compiled(lambda: not f(), BOOL, const=operand.const))

        def not_value() -> Any:
            value = f()
            return None if value is None else not value

        return Compiled(not_value, BOOL, maybe_none=True)

    def arithmetic(self, node: Binary) -> Compiled:
        left, right = self.numeric(node.left, node.op), self.numeric(node.right, node.op)
        fn = _ARITHMETIC[node.op](left, right)
        return _fold(Compiled(fn, NUMBER, const=left.const and right.const))

    def numeric(self, node: Node, what: str) -> Compiled:
        """Compile an operand that must be a number (true/false count as 1/0)."""
        compiled = self.compile(node)
        if compiled.type == TEXT:
            raise ExpressionError(f"`{what}` needs numbers, got text", node.offset, node.end - node.offset)
        if compiled.type == ANY:
            compiled = Compiled(_checked_number(compiled.fn), NUMBER)
        return compiled

    def comparison(self, node: Binary) -> Compiled:
        left, right = self.compile(node.left), self.compile(node.right)
        kinds = {left.type, right.type}
        if TEXT in kinds and kinds & {NUMBER, BOOL}:
            raise ExpressionError(
                f"cannot compare {_DESCRIBE[left.type]} with {_DESCRIBE[right.type]}",
                node.offset,
                node.end - node.offset,
                hint="text is only equal to text" if node.op in ("==", "!=") else None,
            )
        return _fold(_compare(node.op, left, right))

    def logic(self, node: Logic) -> Compiled:
        operands = [self.compile(operand) for operand in node.operands]
        kinds = {operand.type for operand in operands}
        kind = kinds.pop() if len(kinds) == 1 else ANY
        maybe_none = any(operand.maybe_none for operand in operands)
        fns = [operand.fn for operand in operands]
        if node.op == "and":
            return Compiled(_all_of(fns), kind, maybe_none=maybe_none, parts=operands)
        return Compiled(_first_of(fns, [operand.maybe_none for operand in operands]), kind, maybe_none=maybe_none)

    def conditional(self, node: Conditional) -> Compiled:
        then, condition, otherwise = (self.compile(n) for n in (node.then, node.condition, node.otherwise))
        kind = then.type if then.type == otherwise.type else ANY
        a, test, b = then.fn, condition.fn, otherwise.fn
        if condition.maybe_none:

            def choose() -> Any:
                chosen = test()
                if chosen is None:
                    return None
                return a() if chosen else b()
        else:

            def choose() -> Any:
                return a() if test() else b()

        return Compiled(choose, kind, maybe_none=then.maybe_none or otherwise.maybe_none or condition.maybe_none)

    # --- functions ---

    def call(self, node: Call) -> Compiled:
        function = node.function
        if function in ("any", "all", "count"):
            return self.collection(node)
        if function == "since":
            info = self.signal(node.args[0], "since")
            if info.since is None or info.type != "event":
                name = node.args[0]
                raise ExpressionError(
                    f"`since` needs an event; `{self.source[name.offset : name.end]}` is not one",
                    name.offset,
                    name.end - name.offset,
                    hint=_USAGE["since"],
                )
            self.time_dependent = True
            return Compiled(info.since, NUMBER)
        if function == "stale":
            return self.stale(node)
        args = [self.numeric(arg, function) for arg in node.args]
        fn = _MATH[function](*[arg.fn for arg in args]) if function in _MATH else _extremum(function, args)
        return _fold(Compiled(fn, NUMBER, const=all(arg.const for arg in args)))

    def stale(self, node: Call) -> Compiled:
        info = self.signal(node.args[0], "stale")
        cell = info.cell
        if cell is not None:
            return Compiled(lambda: cell.stale, BOOL, stale_cell=cell)
        if info.stale is None:
            name = node.args[0]
            raise ExpressionError(
                f"cannot tell whether `{self.source[name.offset : name.end]}` is stale",
                name.offset,
                name.end - name.offset,
            )
        return Compiled(info.stale, BOOL)

    def collection(self, node: Call) -> Compiled:
        function, source = node.function, node.args[0]
        info = self.signal(source, function)
        if info.type != "object":
            raise ExpressionError(
                f"`{function}` needs a collection such as `body.visitors`; "
                f"`{self.source[source.offset : source.end]}` is {_DESCRIBE[_SIGNAL_TYPES.get(info.type, ANY)]}",
                source.offset,
                source.end - source.offset,
            )
        cell = info.cell
        items: Fn = (lambda: cell.value) if cell is not None else info.get
        if len(node.args) == 1:
            if function != "count":
                raise ExpressionError(f"`{function}` needs a test", node.offset, node.end - node.offset)
            return Compiled(lambda: len(items()), NUMBER)
        scope = _Scope([None], info.fields)
        self.scopes.append(scope)
        try:
            test = self.compile(node.args[1])
        finally:
            self.scopes.pop()
        return Compiled(_COLLECTIONS[function](items, scope.slot, test.fn), BOOL if function != "count" else NUMBER)


_DESCRIBE = {
    NUMBER: "a number",
    BOOL: "true/false",
    TEXT: "text",
    EVENT: "an event",
    OBJECT: "a collection",
    ANY: "a value",
}
_USAGE = {
    "since": "write like `since(body.wave)`",
    "stale": "write like `stale(plinth.button)`",
    "any": "write like `any(body.visitors, hands_raised > 0.5)`",
    "all": "write like `all(body.visitors, distance < 3)`",
    "count": "write like `count(body.visitors, x < 0.5)`",
}


class Expression:
    """A compiled expression. ``evaluate()`` gives its value (None when a value it needs is missing);
    ``evaluate_bool()`` its truth as a condition (false when missing). Neither ever raises."""

    __slots__ = ("evaluate", "evaluate_bool", "failures", "last_failure", "names", "source", "time_dependent", "type")

    evaluate: Callable[[], Any]
    evaluate_bool: Callable[[], bool]

    def __init__(self, source: str, compiled: Compiled, names: frozenset[str], time_dependent: bool) -> None:
        self.source = source
        self.names = names
        """The store names of the signals it reads (to re-evaluate when they change)."""
        self.time_dependent = time_dependent
        """Whether it uses ``since()``: its value changes with time alone, so it must be polled."""
        self.type = compiled.type
        """``number``, ``bool``, ``str`` or ``any``."""
        self.failures = 0
        """Evaluations stopped by a run-time problem (a missing value, a wrong type): they gave None/False."""
        self.last_failure: str | None = None
        exact = self._value_root(compiled.fn)
        chain = _plan_chain(compiled)
        if chain is None:
            self.evaluate = exact
            self.evaluate_bool = self._bool_root(compiled.fn)
        else:
            self.evaluate = chain.build(lambda _error: exact(), chain.exact_when_false(exact))
            self.evaluate_bool = chain.build(self._failed_false, bool)

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        self.last_failure = f"{type(error).__name__}: {error}"

    def _failed_false(self, error: Exception) -> bool:
        self._failed(error)
        return False

    def _value_root(self, fn: Fn) -> Fn:
        failed = self._failed

        def evaluate() -> Any:
            try:
                return fn()
            except Exception as error:  # never raise at run time (foreign getters included): counted instead
                failed(error)
                return None

        return evaluate

    def _bool_root(self, fn: Fn) -> Callable[[], bool]:
        failed = self._failed

        def evaluate_bool() -> bool:
            try:
                value = fn()
                return value is True or (value is not False and _truth(value))
            except Exception as error:  # as in evaluate()
                failed(error)
                return False

        return evaluate_bool

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str, resolver: Resolver) -> Expression:
    """Compile ``source`` with names from ``resolver``; raises ExpressionError."""
    tree = parse(source)
    compiler = Compiler(source, resolver)
    compiled = compiler.compile(tree)
    return Expression(source, compiled, frozenset(compiler.names), compiler.time_dependent)


def compile_condition(source: str, resolver: Resolver) -> tuple[Expression, float | None]:
    """A condition with an optional hold (``... for 0.5s``): the expression and the hold in seconds."""
    expression_source, hold = parse_condition(source)
    return compile_expression(expression_source, resolver), hold
