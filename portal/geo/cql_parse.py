"""Parsing of CQL2 filters (text and JSON) into pygeofilter's syntax tree, with short errors.

The text grammar is pygeofilter's plus the CQL2 forms it lacks: non-ASCII property names,
`''` inside strings, the `BBOX(...)` literal, `T_BEFORE(a, b)` calls, `'..'` interval ends and
T_STARTS/T_FINISHES/T_DISJOINT; CQL2 JSON is brought to the forms pygeofilter reads.
"""

import json
import math
import os
from functools import cache
from typing import Any

import lark
from pygeofilter import ast, values
from pygeofilter.cql2 import BINARY_OP_PREDICATES_MAP, TEMPORAL_PREDICATES_MAP
from pygeofilter.parsers.cql2_json import parse as parse_json_ast
from pygeofilter.parsers.cql2_text import parser as text_parser

from portal.core.errors import InvalidInput

FILTER_LANGS = {"cql2-text": "CQL2 text", "cql2-json": "CQL2 JSON", "cql-text": "CQL text"}
JSON_OPS = {*BINARY_OP_PREDICATES_MAP, "and", "or", "not", "between", "like", "in", "casei"}
# pygeofilter's names for CQL2's T_STARTS...; T_INTERSECTS and T_DISJOINT become BEFORE/AFTER.
CQL2_TEMPORAL = {"t_starts": "t_begins", "t_startedby": "t_begunby", "t_finishes": "t_ends"}
CQL2_TEMPORAL |= {"t_finishedby": "t_endedby"}


def parse_filter(text: str, *, lang: str | None = None) -> Any:
    """Parse CQL2 text or JSON into pygeofilter's tree, or refuse it with a short reason."""
    lang = (lang or "cql2-text").strip().lower()
    if lang not in FILTER_LANGS:
        raise InvalidInput(f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json")
    name = FILTER_LANGS[lang]
    if not text.strip():
        raise InvalidInput("filter is empty; give a CQL2 expression such as 名称 = 'x'")
    try:
        if lang == "cql2-json":
            return parse_json_ast(_normalise_json(json.loads(text)))
        return _text_parser().parse(text)
    except lark.exceptions.UnexpectedToken as exc:
        ended = exc.token.type == "$END"
        reason = "it ends too early" if ended else f"unexpected {exc.token.value!r}"
        reason += "" if ended else f" at column {exc.column}"
    except lark.exceptions.UnexpectedCharacters as exc:
        reason = f"unexpected {exc.char!r} at column {exc.column}"
    except lark.exceptions.VisitError as exc:
        reason = str(exc.orig_exc)[:120]
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at column {exc.colno}"
    except ValueError as exc:
        reason = str(exc)[:120]
    except (TypeError, LookupError, AttributeError):
        reason = "an operator does not have the arguments it needs"
    except RecursionError:
        reason = "it is nested too deeply"
    except lark.exceptions.LarkError as exc:
        reason = str(exc).splitlines()[0][:120]
    raise InvalidInput(f"filter is not valid {name}: {reason}")


@lark.v_args(inline=True)
class _Transformer(text_parser.CQLTransformer):
    def SINGLE_QUOTED(self, token: str) -> str:  # noqa: N802 (lark terminal name)
        return token[1:-1].replace("''", "'")

    def bbox_literal(self, *bounds: float) -> values.Geometry:
        return values.Geometry(_bbox_polygon(list(bounds)))

    def temporal_function(self, op: str, lhs: Any, rhs: Any) -> Any:
        return _temporal_node(str(op), lhs, rhs)

    def binary_temporal_predicate(self, lhs: Any, op: str, rhs: Any) -> Any:
        return _temporal_node(str(op), lhs, rhs)

    def wkt__geometry_with_srid(self, srid: int, geometry: Any) -> Any:
        raise ValueError("SRID=; give the geometry's CRS with the filter-crs parameter")


@cache
def _text_parser() -> lark.Lark:
    folder = os.path.dirname(text_parser.__file__)
    with open(os.path.join(folder, "grammar.lark"), encoding="utf-8") as grammar_file:
        grammar = grammar_file.read()
    for old, new in (
        ("attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/", r"attribute: /[^\W\d][\w:.]*/"),
        ('SINGLE_QUOTED: "\'" /.*?/ "\'"', "SINGLE_QUOTED: /'(?:[^']|'')*'/"),
        ('"BBOX" "(" expression ","', '"BBOX"i "(" attribute ","'),
        (
            '?interval: "INTERVAL" "("  "\'" DATETIME "\'" "," "\'" DATETIME "\'" ")"',
            'interval: "INTERVAL"i "(" SINGLE_QUOTED "," SINGLE_QUOTED ")"',
        ),
        (
            "        | envelope\n",
            "        | envelope\n"
            '        | "BBOX"i "(" full_number "," full_number "," full_number ","'
            ' full_number ")" -> bbox_literal\n',
        ),
        (
            '!_binary_temporal_predicate_func: "T_BEFORE"i',
            '!_binary_temporal_predicate_func: "T_BEFORE"i | "T_STARTS"i | "T_STARTEDBY"i'
            ' | "T_FINISHES"i | "T_FINISHEDBY"i | "T_DISJOINT"i',
        ),
        (
            "          | temporal_predicate\n",
            "          | temporal_predicate\n"
            '          | _binary_temporal_predicate_func "(" expression "," expression ")"'
            " -> temporal_function\n",
        ),
    ):
        grammar = grammar.replace(old, new)
    return lark.Lark(
        grammar,
        parser="lalr",
        maybe_placeholders=False,
        transformer=_Transformer(),
        import_paths=[os.path.dirname(folder)],
        source_path=os.path.join(folder, "grammar.lark"),
    )


def _normalise_json(node: Any) -> Any:
    """Accept CQL2 JSON as the 1.0 standard writes it where pygeofilter expects older forms."""
    if isinstance(node, list):
        return [_normalise_json(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"} and isinstance(node["bbox"], list):
        return _bbox_polygon(node["bbox"])
    node = {key: _normalise_json(value) for key, value in node.items()}
    if isinstance(node.get("function"), dict) and "args" in node["function"]:
        node["function"]["arguments"] = node["function"].pop("args")
    if isinstance(node.get("op"), str) and node["op"].lower().startswith("t_"):
        node["op"] = CQL2_TEMPORAL.get(node["op"].lower(), node["op"].lower())
        if node["op"] in ("t_intersects", "t_disjoint"):
            apart = {
                "op": "or",
                "args": [{"op": f"t_{op}", "args": node["args"]} for op in ("before", "after")],
            }
            return apart if node["op"] == "t_disjoint" else {"op": "not", "args": [apart]}
    if "op" in node and str(node["op"]).lower() not in JSON_OPS and node["op"] != "isNull":
        raise ValueError(f"unknown operator {node['op']!r}")
    if isinstance(node.get("op"), str) and node["op"] != "isNull":
        node["op"] = node["op"].lower()
    args = node.get("args")
    if node.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        node["args"] = [args[0], args[1:]]
    return node


def _bbox_polygon(bounds: list[Any]) -> dict[str, Any]:
    if len(bounds) == 6:
        bounds = [bounds[0], bounds[1], bounds[3], bounds[4]]
    if len(bounds) != 4 or not all(is_number(v) for v in bounds):
        raise ValueError("a BBOX needs four numbers")
    a, b, c, d = (float(v) for v in bounds)
    if a > c or b > d:
        raise ValueError("a BBOX needs its minimums before its maximums")
    return {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]}


def _temporal_node(op: str, lhs: Any, rhs: Any) -> ast.Node:
    """Return the tree of a T_ predicate; T_INTERSECTS is NOT (T_BEFORE OR T_AFTER)."""
    name = CQL2_TEMPORAL.get(op.lower(), op.lower())
    if name in ("t_intersects", "t_disjoint"):
        apart = ast.Or(ast.TimeBefore(lhs, rhs), ast.TimeAfter(lhs, rhs))
        return apart if name == "t_disjoint" else ast.Not(apart)
    return TEMPORAL_PREDICATES_MAP[name](lhs, rhs)


def is_number(value: Any) -> bool:
    """Tell whether a parsed value is a finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
