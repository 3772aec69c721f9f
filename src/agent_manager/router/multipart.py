"""Fields of a multipart/form-data body (audio uploads: `model`, `stream`), read and
rewritten without parsing the file parts: a part is found by its `Content-Disposition` name."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def boundary(content_type: str) -> bytes | None:
    """The boundary of a multipart/form-data content type, or None for anything else."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    found = _BOUNDARY.search(content_type)
    return found.group(1).encode("latin-1") if found else None


def _part(body: bytes, mark: bytes, name: str) -> tuple[int, int] | None:
    """Start and end of the value of the part called `name` in `body`."""
    named = re.compile(
        rb'content-disposition:[^\r\n]*;\s*name="?' + re.escape(name.encode()) + rb'"?(?:[;\s]|$)',
        re.IGNORECASE,
    )
    delimiter = b"--" + mark
    position = body.find(delimiter)
    while position != -1:
        head_start = position + len(delimiter)
        following = body.find(delimiter, head_start)
        if following == -1:
            return None
        head_end = body.find(b"\r\n\r\n", head_start, following)
        if head_end != -1 and named.search(body[head_start:head_end]):
            value_end = following - 2 if body[following - 2 : following] == b"\r\n" else following
            return head_end + 4, value_end
        position = following
    return None


def form_field(body: bytes, mark: bytes, name: str) -> str | None:
    span = _part(body, mark, name)
    if span is None:
        return None
    try:
        return body[span[0] : span[1]].decode()
    except UnicodeDecodeError:
        return None


def with_form_field(body: bytes, mark: bytes, name: str, value: str) -> bytes:
    span = _part(body, mark, name)
    if span is None:
        return body
    return body[: span[0]] + value.encode() + body[span[1] :]
