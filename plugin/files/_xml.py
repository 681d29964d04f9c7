"""Lenient XML for activity files, on the standard library's parser.

Real exports are often slightly broken: a BOM or blank lines before the XML declaration, namespace prefixes
used without a declaration (<ns3:TPX> with no xmlns:ns3), a tail cut off by a failed download. This module
repairs what it safely can and otherwise keeps every element read before the break. Namespaces are stripped
from tags and attribute names, so readers look elements up by local name, whatever version a vendor wrote.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET  # noqa: S405 - entity declarations are refused before parsing (below)
from dataclasses import dataclass

from plugin.files._core import UnreadableFile

_WHITESPACE = b" \t\r\n"
_PREFIX_IN_TAG = re.compile(rb"</?([A-Za-z_][\w.\-]*):[A-Za-z_]")
_PREFIX_IN_ATTRIBUTE = re.compile(rb"[\s\"']([A-Za-z_][\w.\-]*):[A-Za-z_][\w.\-]*\s*=")
_DECLARED_PREFIX = re.compile(rb"xmlns:([A-Za-z_][\w.\-]*)\s*=")
_ENCODING = re.compile(r"^(<\?xml[^>]*?encoding\s*=\s*[\"'])[^\"']*([\"'])")
_ENCODING_BYTES = re.compile(rb"^(<\?xml[^>]*?encoding\s*=\s*[\"'])[^\"']*([\"'])")
_MAX_DECLARED = 64


@dataclass(frozen=True)
class XmlDocument:
    root: ET.Element
    incomplete: frozenset[int]  # id() of the elements still open where the file broke off
    problem: str | None  # why parsing stopped early; None for a whole document


def local_name(tag: object) -> str:
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    return tag.rsplit("}", 1)[-1]


def normalise(data: bytes) -> bytes:
    """The document from its first '<': leading whitespace and byte-order marks removed, UTF-16 as UTF-8."""
    head = data.lstrip(_WHITESPACE)
    while head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :].lstrip(_WHITESPACE)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", errors="replace").lstrip("\ufeff \t\r\n")
        head = _ENCODING.sub(r"\g<1>utf-8\g<2>", text, count=1).encode("utf-8")
    return head


def parse(data: bytes) -> XmlDocument:
    body = normalise(data)
    if b"<!ENTITY" in body:
        raise UnreadableFile("XML entity declarations are not allowed in activity files")
    try:
        root, incomplete, error = _pull(body)
    except LookupError:  # an encoding Python does not know: activity files are UTF-8 in practice
        body = _ENCODING_BYTES.sub(rb"\g<1>utf-8\g<2>", body, count=1)
        root, incomplete, error = _pull_known(body)
    if error is not None and "unbound prefix" in error:
        patched = _declare_prefixes(body)
        if patched is not None:
            root, incomplete, error = _pull_known(patched)
    if root is None:
        raise UnreadableFile(f"not well-formed XML ({error or 'no root element'})")
    return XmlDocument(root=root, incomplete=frozenset(incomplete), problem=error)


def _pull_known(body: bytes) -> tuple[ET.Element | None, set[int], str | None]:
    try:
        return _pull(body)
    except LookupError as exc:
        raise UnreadableFile(f"unknown character encoding in the XML declaration ({exc})") from exc


def _pull(body: bytes) -> tuple[ET.Element | None, set[int], str | None]:
    parser = ET.XMLPullParser(events=("start", "end"))
    error: str | None = None
    try:
        parser.feed(body)
        parser.close()
    except (ET.ParseError, ValueError) as exc:
        error = str(exc)
    root: ET.Element | None = None
    stack: list[ET.Element] = []
    try:
        for event, element in parser.read_events():
            if event == "start":
                element.tag = local_name(element.tag)
                if any("}" in key for key in element.attrib):
                    element.attrib = {local_name(k): v for k, v in element.attrib.items()}
                if root is None:
                    root = element
                stack.append(element)
            elif stack:
                stack.pop()
    except (ET.ParseError, ValueError) as exc:
        error = str(exc)
    return root, {id(e) for e in stack}, error


def _root_tag(body: bytes) -> tuple[int, int] | None:
    """Start and end offsets of the root element's start tag, skipping the prolog."""
    i = 0
    while True:
        j = body.find(b"<", i)
        if j < 0:
            return None
        if body.startswith(b"<?", j):
            k, skip = body.find(b"?>", j), 2
        elif body.startswith(b"<!--", j):
            k, skip = body.find(b"-->", j), 3
        elif body.startswith(b"<!", j):
            k, skip = body.find(b">", j), 1
        else:
            end = body.find(b">", j)
            return (j, end) if end > j else None
        if k < 0:
            return None
        i = k + skip


def _declare_prefixes(body: bytes) -> bytes | None:
    """Declare on the root element every prefix the document uses but never declares there."""
    span = _root_tag(body)
    if span is None:
        return None
    start, end = span
    used = set(_PREFIX_IN_TAG.findall(body)) | set(_PREFIX_IN_ATTRIBUTE.findall(body))
    declared = set(_DECLARED_PREFIX.findall(body[start:end]))
    missing = sorted(used - declared - {b"xml", b"xmlns"})[:_MAX_DECLARED]
    if not missing:
        return None
    name_end = start + 1
    while name_end < end and body[name_end : name_end + 1] not in b" \t\r\n/>":
        name_end += 1
    declarations = b"".join(b' xmlns:%s="urn:backstride:undeclared:%s"' % (p, p) for p in missing)
    return body[:name_end] + declarations + body[name_end:]
