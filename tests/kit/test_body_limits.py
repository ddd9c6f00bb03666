"""Request bodies are bounded before they are read: 413 PAYLOAD_TOO_LARGE, in the error shape.

A 100 MB JSON body to the unauthenticated admin login used to be read and parsed whole. Now a
declared Content-Length over the limit is refused with nothing read, and a chunked body is cut
off at the limit. Document uploads have their own, larger limit, and only upload routes do.
The bodies here are generators that count what the server pulled from them.
"""

from collections.abc import AsyncIterator

import httpx
from httpx import AsyncClient

from cardcore.config import Settings
from tests.customers.helpers import JPEG, create_user
from tests.factories import Partner

MiB = 1024 * 1024
CHUNK = 64 * 1024


class Body:
    """`size` bytes of a JSON-ish body, streamed in chunks; `sent` is what was pulled."""

    def __init__(self, size: int, data: bytes | None = None) -> None:
        self.size = size
        self.data = data
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            if self.data is not None:
                chunk = self.data[self.sent : self.sent + CHUNK]
            else:
                chunk = (b'{"program_id": "' if self.sent == 0 else b"x" * CHUNK)[
                    : self.size - self.sent
                ]
            self.sent += len(chunk)
            yield chunk


def limits(settings: Settings) -> tuple[int, int]:
    return settings.max_json_body_bytes, settings.max_upload_body_bytes


async def test_a_declared_length_over_the_limit_is_refused_unread(
    client: AsyncClient, settings: Settings
) -> None:
    body = Body(100 * MiB)
    response = await client.post(
        "/v1/admin/auth/login",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Content-Length": str(body.size),
            "X-Request-Id": "big-1",
        },
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert response.json()["request_id"] == response.headers["X-Request-Id"] == "big-1"
    assert response.headers["Connection"] == "close"
    assert body.sent == 0


async def test_a_chunked_body_is_cut_off_at_the_limit(
    client: AsyncClient, settings: Settings
) -> None:
    json_limit, _ = limits(settings)
    body = Body(100 * MiB)
    response = await client.post(
        "/v1/admin/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert response.headers["Connection"] == "close"
    assert json_limit < body.sent <= json_limit + CHUNK


async def test_a_body_within_the_limit_is_read(client: AsyncClient, settings: Settings) -> None:
    json_limit, _ = limits(settings)
    # Just under the limit, and not a valid login: it was read and judged.
    padding = json_limit - 200
    content = b'{"program_id": "prg_x", "email": "a@b.co", "password": "' + b"p" * padding + b'"}'
    assert len(content) <= json_limit
    response = await client.post(
        "/v1/admin/auth/login", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "VALIDATION_ERROR"


def _multipart(size: int) -> tuple[bytes, dict[str, str]]:
    request = httpx.Request(
        "POST",
        "http://cardcore/upload",
        data={"type": "passport", "side": "front"},
        files={"file": ("passport.jpg", JPEG + b"\x00" * (size - len(JPEG)), "image/jpeg")},
    )
    return request.read(), {"Content-Type": request.headers["Content-Type"]}


async def test_uploads_have_their_own_limit(
    client: AsyncClient, partner: Partner, settings: Settings
) -> None:
    json_limit, upload_limit = limits(settings)
    user = await create_user(client, partner)
    path = f"/v1/users/{user['id']}/kyc/documents"

    # Above the JSON limit, within the upload limit: a document upload takes it...
    content, headers = _multipart(2 * MiB)
    assert json_limit < len(content) < upload_limit
    accepted = await client.post(path, content=content, headers={**partner.headers, **headers})
    assert accepted.status_code == 201, accepted.text

    # ...a route that takes no file does not, multipart or not.
    body = Body(len(content), content)
    elsewhere = await client.post("/v1/users", content=body, headers={**partner.headers, **headers})
    assert elsewhere.status_code == 413, elsewhere.text
    assert body.sent <= json_limit + CHUNK

    # And an upload over its own limit is cut off too.
    content, headers = _multipart(upload_limit + MiB)
    body = Body(len(content), content)
    refused = await client.post(path, content=body, headers={**partner.headers, **headers})
    assert refused.status_code == 413, refused.text
    assert refused.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert upload_limit < body.sent <= upload_limit + CHUNK
