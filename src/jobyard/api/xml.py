"""Rails-style XML: render JSON-like data the way `to_xml` does, and read small XML bodies.

Rendering (`to_xml`), for any resource:

- the document starts with `<?xml version="1.0" encoding="UTF-8"?>`;
- names are dasherised (`run_key` -> `run-key`); a character no XML name may hold becomes `-`
  and a name that cannot start an element is prefixed with `_`;
- typed values carry `type`: `integer`, `boolean`, `float`, `decimal`, `datetime`, `date`;
  strings carry none;
- None is an empty element with `nil="true"` (`<stderr nil="true"></stderr>`, as BMC writes it);
- a mapping is nested elements in its own key order;
- a list is `type="array"` around children named by singularising (a trailing "s" dropped), and
  a top-level list of `root` records is `<roots type="array">` with `<root>` children;
- children are indented two spaces a level, up to 16 levels (deeper ones stay at that);
- text is escaped; characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates,
  U+FFFE/U+FFFF) become U+FFFD, since no escape can represent them.

Datetimes are written by `format_datetime` (ISO 8601 by default), so a caller renders them the
same way in JSON and XML.

Parsing (`from_xml`), for request bodies such as BMC's `<filters>…</filters>`: Rails'
`Hash.from_xml` in small. The body is capped, must be UTF-8, and any `<!DOCTYPE` (hence any
entity declaration) is refused before the parser sees it; `type="integer"`, `"boolean"`,
`"array"` and `nil="true"` are honoured; dashes in names become underscores.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape, quoteattr

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
INDENT = "  "
MAX_INDENT_DEPTH = 16  # deeper elements are indented as much as this level's
MAX_PARSE_BYTES = 64 * 1024
MAX_PARSE_DEPTH = 32

# Characters XML 1.0 allows (§2.2); everything else is replaced, not escaped.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9.-]")  # ASCII only: always a valid XML name
_FORBIDDEN_MARKUP = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

DatetimeFormatter = Callable[[datetime], str]


class XmlError(ValueError):
    """A body that is not acceptable XML (malformed, too big, too deep, or with a DTD)."""


def iso_datetime(value: datetime) -> str:
    return value.isoformat()


def dasherize(name: str) -> str:
    """A key as an XML element name: underscores become dashes, and the name is made valid."""
    text = _NOT_NAME_CHAR.sub("-", name.replace("_", "-"))
    return text if text[:1].isascii() and text[:1].isalpha() else "_" + text


def singularize(name: str) -> str:
    """The element name of a list's children: the simple rule, a trailing "s" dropped."""
    if len(name) > 1 and name.endswith("s"):
        return name[:-1]
    return name


def pluralize(name: str) -> str:
    return name + "s"


def clean_text(text: str) -> str:
    """Text XML can carry: disallowed characters become U+FFFD; then escaped."""
    return escape(_NOT_XML_CHAR.sub("\ufffd", text))


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def _scalar(value: Any, format_datetime: DatetimeFormatter) -> tuple[str | None, str]:
    """(type attribute, text) of a scalar; TypeError for what XML cannot show."""
    # Order matters: a bool is an int, and a datetime is a date.
    writers: list[tuple[type, str | None, Callable[[Any], str]]] = [
        (bool, "boolean", lambda v: "true" if v else "false"),
        (int, "integer", str),
        (float, "float", _float_text),
        (Decimal, "decimal", str),
        (datetime, "datetime", format_datetime),
        (date, "date", date.isoformat),
        (str, None, str),
    ]
    for kind, name, write in writers:
        if isinstance(value, kind):
            return name, write(value)
    raise TypeError(f"cannot render {type(value).__name__} as XML")


def _pad(depth: int) -> str:
    """Indentation grows with depth up to a cap, so that a document's size stays linear in
    its data's (indenting every level would write depth² spaces for a deep value)."""
    return INDENT * min(depth, MAX_INDENT_DEPTH)


def _element(
    name: str,
    value: Any,
    depth: int,
    out: list[str],
    format_datetime: DatetimeFormatter,
    attrs: str = "",
) -> None:
    """Write `value` as element `name`, children and all; with a list of work, not
    recursion, so that a value of any depth renders."""
    todo: list[tuple[str, Any, int, str] | str] = [(name, value, depth, attrs)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):  # a closing tag
            out.append(item)
            continue
        name, value, depth, attrs = item
        pad = _pad(depth)
        if value is None:
            out.append(f'{pad}<{name}{attrs} nil="true"></{name}>')
        elif isinstance(value, Mapping):
            out.append(f"{pad}<{name}{attrs}>")
            todo.append(f"{pad}</{name}>")
            children = [(dasherize(str(k)), v, depth + 1, "") for k, v in value.items()]
            todo.extend(reversed(children))
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            child = singularize(name)
            out.append(f'{pad}<{name}{attrs} type="array">')
            todo.append(f"{pad}</{name}>")
            todo.extend(reversed([(child, v, depth + 1, "") for v in value]))
        else:
            kind, text = _scalar(value, format_datetime)
            typed = f" type={quoteattr(kind)}" if kind else ""
            out.append(f"{pad}<{name}{attrs}{typed}>{clean_text(text)}</{name}>")


def to_xml(data: Any, root: str, *, format_datetime: DatetimeFormatter = iso_datetime) -> str:
    """`data` as a Rails-style document whose root is `root` (a record's singular name).

    A list becomes `<roots type="array">` holding one `<root>` per item.
    """
    name = dasherize(root)
    out: list[str] = []
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        out.append(f'<{pluralize(name)} type="array">')
        for item in data:
            _element(name, item, 1, out, format_datetime)
        out.append(f"</{pluralize(name)}>")
    else:
        _element(name, data, 0, out, format_datetime)
    return HEADER + "\n".join(out) + "\n"


def _undasherize(tag: str) -> str:
    return tag.replace("-", "_")


def _convert(element: ET.Element, depth: int) -> Any:
    if depth > MAX_PARSE_DEPTH:
        raise XmlError(f"XML nested deeper than {MAX_PARSE_DEPTH} elements")
    if element.get("nil") == "true":
        return None
    kind = element.get("type")
    children = list(element)
    if kind == "array":
        return [_convert(child, depth + 1) for child in children]
    if children:
        result: dict[str, Any] = {}
        repeated: set[str] = set()
        for child in children:
            key = _undasherize(child.tag)
            value = _convert(child, depth + 1)
            if key in repeated:
                result[key].append(value)
            elif key in result:  # a repeated element collects into a list, as in Rails
                result[key] = [result[key], value]
                repeated.add(key)
            else:
                result[key] = value
        return result
    text = (element.text or "").strip()
    return _typed_text(text, kind)


def _typed_text(text: str, kind: str | None) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise XmlError(f'invalid integer "{text[:50]}"') from None
    if kind == "boolean":
        if text.lower() in {"true", "1"}:
            return True
        if text.lower() in {"false", "0"}:
            return False
        raise XmlError(f'invalid boolean "{text[:50]}"')
    return text


def from_xml(body: bytes | str, *, max_bytes: int = MAX_PARSE_BYTES) -> dict[str, Any]:
    """A small, trusted-shape XML document as `{root: value}`, like Rails' `Hash.from_xml`."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > max_bytes:
        raise XmlError(f"XML body larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise XmlError("XML body is not UTF-8") from None
    if _FORBIDDEN_MARKUP.search(text):
        raise XmlError("XML document type declarations and entities are not accepted")
    try:
        # The DTD check above leaves no entity to expand; expat fetches nothing external.
        root = ET.fromstring(raw)  # noqa: S314
    except ET.ParseError as exc:
        raise XmlError(f"malformed XML: {exc}") from None
    return {_undasherize(root.tag): _convert(root, 0)}
