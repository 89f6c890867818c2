"""What a PromQL expression (of a dashboard, an alert rule) reads: metric names and labels.

Not a PromQL parser: a tokenizer good enough for the queries of deploy/, which
`promtool check rules` parses for real (test_dashboards.py). Grafana's variables are
replaced first (`grafana_to_promql`), so a dashboard query becomes plain PromQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Grafana's interval variables become a duration, every other variable a number (outside a
# string) or stays as text (inside a label matcher's string, where it is harmless).
_INTERVAL_VARIABLES = re.compile(r"\$\{?(?:__rate_interval|__interval|__range)\b\}?")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$"
)
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "inf", "nan", "Inf", "NaN", "group_left", "group_right"}
)


@dataclass
class Reads:
    """The metrics an expression selects, with the labels its matchers name, and the labels
    it groups or matches by (by, without, on, ignoring, group_left, group_right)."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    grouping: set[str] = field(default_factory=set)

    def merge(self, other: Reads) -> None:
        for metric, labels in other.metrics.items():
            self.metrics.setdefault(metric, set()).update(labels)
        self.grouping |= other.grouping


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as plain PromQL: intervals become 5m, other variables 1 or text."""
    expr = _INTERVAL_VARIABLES.sub("5m", expr)
    parts = []
    last = 0
    for string in _STRING.finditer(expr):
        parts.append(_VARIABLE.sub("1", expr[last : string.start()]))
        parts.append(_VARIABLE.sub("x", string.group()))
        last = string.end()
    parts.append(_VARIABLE.sub("1", expr[last:]))
    return "".join(parts)


def reads(expr: str) -> Reads:
    """The metrics and labels a PromQL expression reads (Grafana variables allowed)."""
    result = Reads()
    text = _STRING.sub('""', grafana_to_promql(expr))
    text = _RANGE.sub("", text)
    text = _OFFSET.sub("", text)

    def selector(match: re.Match[str]) -> str:
        name = match.group(1)
        labels = set(_MATCHER_LABEL.findall(match.group(2)))
        if not name or name in KEYWORDS:
            if "__name__" in labels:
                raise ValueError(f"selectors by __name__ are not checked: {expr!r}")
            # `by (x) {..}` cannot happen; a bare {..} after a keyword is a selector of no name.
            raise ValueError(f"a selector without a metric name: {expr!r}")
        result.metrics.setdefault(name, set()).update(labels)
        return " "

    text = _MATCHERS.sub(selector, text)

    def grouping(match: re.Match[str]) -> str:
        result.grouping.update(
            label.strip() for label in match.group(2).split(",") if label.strip()
        )
        return " "

    text = _GROUPING.sub(grouping, text)
    for identifier, call in _IDENTIFIER.findall(text):
        if call or identifier in KEYWORDS:
            continue
        result.metrics.setdefault(identifier, set())
    return result


def variable_reads(query: str) -> Reads:
    """What a Grafana Prometheus variable query reads: `label_values(selector, label)`,
    `label_values(label)`, or a PromQL query (`query_result(...)` is not used here)."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        return reads(query)
    selector, label = match.groups()
    result = reads(selector) if selector else Reads()
    for labels in result.metrics.values():
        labels.add(label)
    return result
