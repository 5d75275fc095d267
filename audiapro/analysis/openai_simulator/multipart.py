"""Minimal `multipart/form-data` parser (stdlib only; the `cgi` module is gone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from typing import Final

from audiapro.analysis.openai_simulator.errors import SimError

_CRLF: Final = b"\r\n"
_HEADER_END: Final = b"\r\n\r\n"


@dataclass(frozen=True)
class FilePart:
    """An uploaded file field: client-supplied name and bytes."""

    filename: str
    data: bytes


@dataclass
class MultipartForm:
    """Decoded form: text fields (repeatable, e.g. `keywords[]`) and file fields, by field name."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, FilePart] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The last value of a text field, or None."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def get_list(self, name: str) -> list[str]:
        """All values of an array field sent as `name[]`."""
        return self.fields.get(f"{name}[]", [])


def _param(header: str, value: str, name: str) -> str | None:
    # email.message handles quoting and RFC 2231 encodings of header parameters.
    msg = Message()
    msg[header] = value
    found = msg.get_param(name, header=header)
    if found is None:
        return None
    return str(found[2]) if isinstance(found, tuple) else str(found)


def _malformed(why: str) -> SimError:
    return SimError(400, f"Could not parse multipart form: {why}.")


def parse_multipart(content_type: str, body: bytes) -> MultipartForm:
    """Parse a `multipart/form-data` body.

    Raises:
        SimError: 400 for another content type or a malformed body.
    """
    boundary = _param("content-type", content_type, "boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise SimError(400, "Invalid Content-Type header: expected multipart/form-data with a boundary.")
    # Prefixing CRLF lets the first delimiter match the same pattern as the others.
    pieces = (_CRLF + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise _malformed("missing closing boundary")
    form = MultipartForm()
    for piece in pieces[1:-1]:
        head, sep, data = piece.removeprefix(_CRLF).partition(_HEADER_END)
        headers = dict(line.partition(":")[::2] for line in head.decode("utf-8", "replace").split("\r\n"))
        disposition = {k.strip().lower(): v.strip() for k, v in headers.items()}.get(
            "content-disposition", ""
        )
        name = _param("content-disposition", disposition, "name")
        if not sep or name is None:
            raise _malformed("a part without headers or name")
        filename = _param("content-disposition", disposition, "filename")
        if filename is not None:
            form.files[name] = FilePart(filename, data)
        else:
            form.fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return form
