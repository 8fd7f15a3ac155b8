"""A small OData ``$filter`` parser and evaluator for directory users, with Graph's support rules.

Graph answers some operators by default and others only as *advanced queries* (header
``ConsistencyLevel: eventual`` plus ``$count=true``); :class:`Filter` records which operators a
parsed expression uses so the caller can enforce that. Comparisons are case-insensitive, as in Entra.
See https://learn.microsoft.com/graph/aad-advanced-queries and
https://learn.microsoft.com/graph/filter-query-parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from entrasync.emulator.objects import ON_PREM_ATTRIBUTES

Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<num>-?\d[\w:.+\-]*)|(?P<word>[A-Za-z_$][\w./]*))"
)
COMPARISON_OPS = ("eq", "ne", "gt", "ge", "lt", "le")
ADVANCED_OPS = frozenset({"ne", "not", "endsWith", "gt", "ge", "lt", "le", "null"})


class FilterError(ValueError):
    """A filter Graph would refuse. ``code``/``message`` are what Graph answers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PropertyRule:
    """How one property may be filtered. ``advanced_eq``: even eq needs advanced query parameters;
    ``starts_with``: whether startsWith applies; ``getter``: how to read it (default ``obj.get(name)``)."""

    name: str
    ends_with: bool = False
    advanced_eq: bool = False
    kind: str = "string"  # "string" | "bool" | "date"
    starts_with: bool = True
    getter: Callable[[Any], Any] | None = None

    def value_of(self) -> Callable[[Any], Any]:
        if self.getter is not None:
            return self.getter
        name = self.name
        return lambda obj: obj.get(name)


@dataclass
class Filter:
    text: str
    predicate: Predicate
    operators: set[str] = field(default_factory=set)  # e.g. {"eq", "startsWith", "ne"}
    properties: set[str] = field(default_factory=set)
    needs_advanced: bool = False
    first_advanced: str | None = None  # the operator to name in the error message


def _unsupported_property(prop: str, resource: str) -> FilterError:
    return FilterError(
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource '{resource}'.",
    )


class _Parser:
    def __init__(self, text: str, rules: Mapping[str, PropertyRule], resource: str) -> None:
        self.text = text
        self.rules = rules
        self.resource = resource
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise self.syntax(pos)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0
        self.filter = Filter(text=text, predicate=lambda _u: True)

    def syntax(self, pos: int | None = None) -> FilterError:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return FilterError("BadRequest", f"Invalid filter clause: Syntax error at position {pos} in '{self.text}'.")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise self.syntax()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise self.syntax(tok[2])

    def word_is(self, tok: tuple[str, str, int] | None, word: str) -> bool:
        return tok is not None and tok[0] == "word" and tok[1].lower() == word.lower()

    def use(self, op: str) -> None:
        self.filter.operators.add(op)
        if op in ADVANCED_OPS and not self.filter.needs_advanced:
            self.filter.needs_advanced = True
            self.filter.first_advanced = op

    def parse(self) -> Filter:
        if not self.tokens:
            raise self.syntax(0)
        pred = self.or_expr()
        if self.peek() is not None:
            raise self.syntax()
        self.filter.predicate = pred
        return self.filter

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.word_is(self.peek(), "or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda u: any(p(u) for p in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.word_is(self.peek(), "and"):
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda u: all(p(u) for p in parts)

    def unary(self) -> Predicate:
        if self.word_is(self.peek(), "not"):
            self.take()
            self.use("not")
            inner = self.unary()
            return lambda u: not inner(u)
        return self.primary()

    def prop(self) -> PropertyRule:
        kind, value, pos = self.take()
        if kind != "word":
            raise self.syntax(pos)
        rule = self.rules.get(value.lower())
        if rule is None:
            raise FilterError(
                "Request_BadRequest",
                f"Could not find a property named '{value}' on type 'Microsoft.DirectoryServices.{self.resource}'.",
            )
        self.filter.properties.add(rule.name)
        return rule

    def literal(self, rule: PropertyRule) -> Any:
        kind, value, pos = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        if kind == "num":
            return value
        raise self.syntax(pos)

    def primary(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise self.syntax()
        if tok[1] == "(":
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if tok[0] == "word" and nxt is not None and nxt[1] == "(":
            return self.function()
        rule = self.prop()
        op_tok = self.take()
        op = op_tok[1].lower()
        if op == "in":
            self.use("in")
            if rule.advanced_eq:
                self.use("null")
            self.expect("(")
            values = [self.literal(rule)]
            while self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
                self.take()
                values.append(self.literal(rule))
            self.expect(")")
            wanted = {_norm(v) for v in values}
            get = rule.value_of()
            return lambda u: _norm(get(u)) in wanted
        if op not in COMPARISON_OPS:
            raise self.syntax(op_tok[2])
        value = self.literal(rule)
        self.use(op)
        if value is None or rule.advanced_eq:
            self.use("null")  # comparisons with null need advanced queries
        if rule.kind == "bool" and not isinstance(value, bool) and value is not None:
            raise self.syntax(op_tok[2])
        return _compare(rule.value_of(), op, value)

    def function(self) -> Predicate:
        _kind, fname, pos = self.take()
        name = {"startswith": "startsWith", "endswith": "endsWith"}.get(fname.lower())
        if name is None:
            if fname.lower() in ("contains", "substringof"):
                raise FilterError("Request_UnsupportedQuery", "Unsupported Query.")
            raise self.syntax(pos)
        self.expect("(")
        rule = self.prop()
        self.expect(",")
        value = self.literal(rule)
        self.expect(")")
        if not isinstance(value, str) or rule.kind != "string":
            raise _unsupported_property(rule.name, self.resource)
        if (name == "endsWith" and not rule.ends_with) or (name == "startsWith" and not rule.starts_with):
            raise _unsupported_property(rule.name, self.resource)
        self.use(name)
        if rule.advanced_eq:
            self.use("null")
        needle = value.lower()
        get = rule.value_of()
        if name == "startsWith":
            return lambda u: (v := get(u)) is not None and str(v).lower().startswith(needle)
        return lambda u: (v := get(u)) is not None and str(v).lower().endswith(needle)


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _compare(get: Callable[[Any], Any], op: str, value: Any) -> Predicate:
    target = _norm(value)
    if op == "eq":
        return lambda u: _norm(get(u)) == target
    if op == "ne":
        return lambda u: _norm(get(u)) != target

    def ordered(u: Any) -> bool:
        v = _norm(get(u))
        if v is None or target is None:
            return False
        return bool({"gt": v > target, "ge": v >= target, "lt": v < target, "le": v <= target}[op])

    return ordered


def parse_filter(text: str, rules: Mapping[str, PropertyRule], resource: str = "User") -> Filter:
    """Parse ``text``; raise :class:`FilterError` with Graph's code and message when Graph would."""
    return _Parser(text, rules, resource).parse()


def _rules(*specs: PropertyRule) -> dict[str, PropertyRule]:
    return {r.name.lower(): r for r in specs}


# Per-property support on users: the user resource's property table and the directory-objects
# filter table of https://learn.microsoft.com/graph/aad-advanced-queries (companyName, employeeType,
# employeeHireDate, mobilePhone, officeLocation, preferredLanguage and onPremisesExtensionAttributes
# need advanced query parameters even for eq; the 15 extension attributes do not support startsWith).
USER_FILTER_RULES = _rules(
    PropertyRule("id"),
    PropertyRule("accountEnabled", kind="bool"),
    PropertyRule("city"),
    PropertyRule("companyName", advanced_eq=True),
    PropertyRule("country"),
    PropertyRule("createdDateTime", advanced_eq=True, kind="date"),
    PropertyRule("department"),
    PropertyRule("displayName", ends_with=True),
    PropertyRule("employeeHireDate", advanced_eq=True, kind="date"),
    PropertyRule("employeeId"),
    PropertyRule("employeeType", advanced_eq=True),
    PropertyRule("givenName", ends_with=True),
    PropertyRule("jobTitle"),
    PropertyRule("mail", ends_with=True),
    PropertyRule("mailNickname"),
    PropertyRule("mobilePhone", advanced_eq=True),
    PropertyRule("officeLocation", advanced_eq=True),
    PropertyRule("preferredLanguage", advanced_eq=True),
    PropertyRule("surname", ends_with=True),
    PropertyRule("usageLocation"),
    PropertyRule("userPrincipalName", ends_with=True),
    PropertyRule("userType"),
    *(
        PropertyRule(f"onPremisesExtensionAttributes/{a}", advanced_eq=True, starts_with=False)
        for a in ON_PREM_ATTRIBUTES
    ),
)


def user_filter_rules(extension_names: Iterable[str]) -> dict[str, PropertyRule]:
    """The user rules plus a tenant's directory extensions (filterable with eq, in and startsWith:
    https://learn.microsoft.com/graph/extensibility-overview#directory-microsoft-entra-id-extensions)."""
    rules = dict(USER_FILTER_RULES)
    for name in extension_names:
        rules[name.lower()] = PropertyRule(name, getter=_extension_getter(name))
    return rules


def _extension_getter(name: str) -> Callable[[Any], Any]:
    def get(user: Any) -> Any:
        ext = user._ext
        return ext.get(name) if ext else None

    return get


GROUP_FILTER_RULES = _rules(
    PropertyRule("id"),
    PropertyRule("displayName", ends_with=True),
    PropertyRule("mail", ends_with=True),
    PropertyRule("mailNickname"),
    PropertyRule("mailEnabled", kind="bool"),
    PropertyRule("securityEnabled", kind="bool"),
    PropertyRule("description", advanced_eq=True),
)
