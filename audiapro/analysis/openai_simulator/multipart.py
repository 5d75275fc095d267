"""Minimal `multipart/form-data` parser (stdlib only; the `cgi` module is deprecated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from audiapro.analysis.openai_simulator.errors import SimError

_CRLF = b"\r\n"
_HEADER_END = b"\r\n\r\n"


@dataclass(frozen=True)
class FilePart:
    """An uploaded file field.

    Attributes:
        filename: Client-supplied file name (may be empty).
        content_type: Part content type, if sent.
        data: Raw file bytes.
    """

    filename: str
    content_type: str | None
    data: bytes


@dataclass
class MultipartForm:
    """Decoded form: text fields (repeatable, e.g. `include[]`) and file fields.

    Attributes:
        fields: Text values by field name, in arrival order.
        files: File parts by field name (last one wins).
    """

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, FilePart] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The last value of a text field, or None."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def get_list(self, name: str) -> list[str]:
        """All values of an array field sent as `name[]` (or repeated `name`)."""
        return self.fields.get(f"{name}[]", []) + self.fields.get(name, [])

    def nested(self, name: str) -> dict[str, str]:
        """Object fields sent as `name[key]=value`."""
        prefix = f"{name}["
        return {k[len(prefix) : -1]: v[-1] for k, v in self.fields.items() if k.startswith(prefix) and v}


def _header_param(header_value: str, param: str) -> str | None:
    # email.message handles quoting and RFC 2231 encodings of Content-Disposition parameters.
    msg = Message()
    msg["content-disposition"] = header_value
    value = msg.get_param(param, header="content-disposition")
    if value is None:
        return None
    if isinstance(value, tuple):
        return str(value[2])
    return str(value)


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a `multipart/form-data` content type.

    Raises:
        SimError: 400 if the content type is not multipart or has no boundary.
    """
    msg = Message()
    msg["content-type"] = content_type
    boundary = msg.get_param("boundary")
    if msg.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise SimError(400, "Invalid Content-Type header: expected multipart/form-data with a boundary.")
    return boundary


def parse_multipart(content_type: str, body: bytes) -> MultipartForm:
    """Parse a `multipart/form-data` body.

    Args:
        content_type: The request's Content-Type header.
        body: The raw request body.

    Returns:
        The decoded form.

    Raises:
        SimError: 400 for a malformed body.
    """
    delimiter = b"\r\n--" + boundary_of(content_type).encode("latin-1")
    # Prefixing CRLF lets the first delimiter match the same pattern as the others.
    pieces = (_CRLF + body).split(delimiter)
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise SimError(400, "Could not parse multipart form: missing closing boundary.")
    form = MultipartForm()
    for piece in pieces[1:-1]:
        if not piece.startswith(_CRLF):
            raise SimError(400, "Could not parse multipart form: malformed part.")
        head, sep, data = piece[len(_CRLF) :].partition(_HEADER_END)
        if not sep:
            raise SimError(400, "Could not parse multipart form: part without headers.")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _header_param(disposition, "name")
        if name is None:
            raise SimError(400, "Could not parse multipart form: part without a name.")
        filename = _header_param(disposition, "filename")
        if filename is not None:
            form.files[name] = FilePart(filename, headers.get("content-type"), data)
        else:
            form.fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return form
