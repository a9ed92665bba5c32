"""A strict ``multipart/form-data`` parser (what Workhorse hands GitLab for PyPI uploads)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from sandbox.gitlab.http import ApiError


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _params(value: str) -> Message:
    message = Message()
    message["content-disposition"] = value
    return message


def parse_multipart(content_type: str | None, body: bytes) -> list[Part]:
    header = Message()
    header["content-type"] = content_type or ""
    if header.get_content_type() != "multipart/form-data":
        raise ApiError.bad_request("Content-Type must be multipart/form-data")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ApiError.bad_request("multipart boundary missing")
    delimiter = b"--" + boundary.encode()
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise ApiError.bad_request("malformed multipart body")
    parts = []
    for section in sections[1:-1]:
        if section.startswith(b"\r\n"):
            section = section[2:]
        head, separator, content = section.partition(b"\r\n\r\n")
        if not separator:
            raise ApiError.bad_request("malformed multipart body")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = ""
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value.strip()
        params = _params(disposition)
        name = params.get_param("name", header="content-disposition")
        filename = params.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            continue
        parts.append(Part(name, filename if isinstance(filename, str) else None, content))
    return parts
