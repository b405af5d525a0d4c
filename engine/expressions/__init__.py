"""Expressions: the small language curators write conditions and values in.

Conditions decide when things happen (``when:`` of rules and transitions);
values compute numbers sent to devices (``expr:`` of actions). Examples::

    body.count > 0
    body.count > 0 for 0.5s                       # a condition held for half a second
    plinth.button and not stale(plinth.button)
    body.nearest.hands_raised > 0.2 or controls.wash > 0.5
    map_range(body.nearest.distance, 1, 4, 255, 0)  # closer visitor, brighter light
    clamp(body.count * 20, 0, 100)
    since(body.wave) < 2s                         # waved in the last two seconds
    count(body.visitors, hands_raised > 0.5) >= 2  # at least two visitors with raised hands
    any(body.visitors, x < 0.3)                   # someone on the left of the picture
    "night" if controls.season == 2 else "day"

**Values.** Numbers (``2``, ``0.5``, ``1e3``), ``true`` and ``false``, text in
single or double quotes (``"day"``, ``'it\\'s'``), and durations, which are
numbers of seconds: ``500ms`` (0.5), ``0.5s``, ``2min`` (120), ``1h`` (3600).

**Names** are signals, written with dots: ``body.count``, ``plinth.button``,
``controls.wash``, ``var.visits``. ``visitors.…`` reads the pose sensor when the
exhibit has exactly one. An event (``body.wave``) has no value of its own: ask
``since(body.wave)``. A collection (``body.visitors``) is used through ``count``,
``any`` and ``all``.

**Operators**, loosest first, as in Python:

* ``a if condition else b``
* ``or``, then ``and``, then ``not``
* comparisons ``<  <=  >  >=  ==  !=`` (one per comparison: write
  ``0 < x and x < 1``, not ``0 < x < 1``)
* ``+  -``, then ``*  /  %``, then a leading ``-``
* parentheses group: ``(a + b) * 2``

``and``/``or`` stop as soon as the answer is known and give the operand that
decided it, like Python. ``true``/``false`` count as 1/0 in arithmetic. Text can
be compared with text, never with numbers (``controls.mode == 2`` where the mode
is text is an error). Dividing by zero gives infinity (or "not a number" for
``0 / 0``) instead of stopping the show; ``%`` is the remainder, with the sign
of the divisor as in Python (``-7 % 3`` is 2).

**Functions:**

* ``clamp(x, lo, hi)``: x kept within lo..hi
* ``lerp(a, b, t)``: a when t is 0, b when t is 1, in between proportionally
* ``map_range(x, in_lo, in_hi, out_lo, out_hi)``: x moved from one range to the
  other, kept within out_lo..out_hi
* ``smoothstep(edge0, edge1, x)``: 0 below edge0, 1 above edge1, an S-curve between
* ``min(a, b, ...)``, ``max(a, b, ...)``, ``abs(x)``
* ``round(x)`` (halves away from zero), ``floor(x)``, ``ceil(x)``
* ``since(event)``: seconds since the event last happened (infinite if never)
* ``stale(name)``: true while the signal's source is offline or has never spoken
* ``any(visitors, test)``, ``all(visitors, test)``, ``count(visitors, test)``:
  whether any / every visitor passes the test, or how many do; inside the test,
  plain names are that visitor's fields: ``id``, ``hands_raised``,
  ``hand_height``, ``x``, ``distance``... (looked up on the visitor, then on its
  body features); dotted names are still signals. ``count(visitors)`` is how
  many there are.

**Missing values.** A signal that has never been set has no value; an
expression that needs it gives "nothing" (``None``), and a condition that needs
it is false. Nothing an expression does at run time can raise an error.

**Mistakes** are reported when the exhibit loads, each at its place in the
expression (columns in messages count from 1)::

    body.cout > 1        unknown name `body.cout` (did you mean `body.count`?)
    clamp(x, 0           expected `)` to close `(` at column 6
    clamp(x, 0)          `clamp` takes 3 arguments, got 2
    0 < x < 1            a comparison cannot be chained: write `a < b and b < c`
    controls.mode > 1    cannot compare text with a number (when the mode is text)
    body.count > 0 for 2 the hold `2` needs a unit (write `for 2s`)

For programmers: the source is tokenized and parsed (recursive descent) into a
small syntax tree, which is compiled into nested Python closures; Python's
``eval``/``exec``/``compile`` are never used, so an expression can reach only
the names its :class:`Resolver` gives it. Names are looked up once, at compile
time, and signal reads are plain attribute reads on the captured
:class:`~engine.signals.Signal` objects. Every compile error is an
:class:`ExpressionError` with the 0-based offset of the problem in the source.

Where each part lives (each module imports only those above it):

* :mod:`~engine.expressions.errors`: :class:`ExpressionError`
* :mod:`~engine.expressions.values`: what the others share: ``Fn`` (a compiled
  piece), ``Slot``, the result types known at compile time, :class:`Compiled`
* :mod:`~engine.expressions.names`: :class:`NameInfo`, :class:`Resolver`,
  :class:`StoreResolver`
* :mod:`~engine.expressions.lexer`: the tokens (:func:`tokenize`)
* :mod:`~engine.expressions.parser`: the syntax tree, :class:`Parser`,
  :func:`parse`, :func:`parse_condition`, the functions and their arities
* :mod:`~engine.expressions.runtime`: the run-time closures of operators:
  constants, item fields, arithmetic, comparisons, ``and``/``or``, truth
* :mod:`~engine.expressions.functions`: the run-time closures of functions:
  ``any``/``all``/``count``, ``clamp``, ``lerp``, ``map_range``...
* :mod:`~engine.expressions.chains`: fused conditions, an ``and`` of
  true/false tests run in one frame
* :mod:`~engine.expressions.compiler`: :class:`Compiler`, :class:`Expression`,
  :func:`compile_expression`, :func:`compile_condition`
"""

from engine.expressions.compiler import Compiler, Expression, compile_condition, compile_expression
from engine.expressions.errors import ExpressionError
from engine.expressions.lexer import Token, tokenize
from engine.expressions.names import NameInfo, Resolver, StoreResolver
from engine.expressions.parser import FUNCTIONS, Node, Parser, parse, parse_condition
from engine.expressions.values import Compiled, Fn

__all__ = [
    "FUNCTIONS",
    "Compiled",
    "Compiler",
    "Expression",
    "ExpressionError",
    "Fn",
    "NameInfo",
    "Node",
    "Parser",
    "Resolver",
    "StoreResolver",
    "Token",
    "compile_condition",
    "compile_expression",
    "parse",
    "parse_condition",
    "tokenize",
]
