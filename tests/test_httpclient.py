"""wadesk's outbound HTTP client (wadesk/httpclient.py) against a real local server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.helpers import local_http_server
from wadesk.httpclient import HttpClient, HttpError, HttpTimeout


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            upload = form["file"]
            assert isinstance(upload, web.FileField)
            return web.json_response(
                {
                    "type": form["type"],
                    "filename": upload.filename,
                    "mime": upload.content_type,
                    "bytes": upload.file.read().decode(),
                }
            )
        return web.json_response(
            {
                "method": request.method,
                "auth": request.headers.get("Authorization"),
                "json": await request.json() if request.can_read_body else None,
            },
            headers={"Retry-After": "7"},
        )

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, reason="Down For Now", text="<html>not json</html>")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_get("/moved", moved)
    app.router.add_get("/broken", broken)
    async with local_http_server(app) as url:
        yield url


async def test_json_request_and_answer(server: str) -> None:
    http = HttpClient(timeout=5)
    try:
        answer = await http.request(
            "POST", f"{server}/echo", headers={"Authorization": "Bearer t"}, json={"a": [1, "é"]}
        )
        assert answer.status_code == 200
        assert answer.reason_phrase == "OK"
        assert answer.json() == {"method": "POST", "auth": "Bearer t", "json": {"a": [1, "é"]}}
        assert answer.headers["retry-after"] == "7"  # case-insensitive
    finally:
        await http.aclose()


async def test_multipart_upload(server: str) -> None:
    http = HttpClient(timeout=5)
    try:
        answer = await http.request(
            "POST",
            f"{server}/echo",
            data={"type": "application/pdf"},
            files={"file": ("invoice.pdf", b"%PDF-1.4", "application/pdf")},
        )
        assert answer.json() == {
            "type": "application/pdf",
            "filename": "invoice.pdf",
            "mime": "application/pdf",
            "bytes": "%PDF-1.4",
        }
    finally:
        await http.aclose()


async def test_error_answers_are_answers_and_redirects_are_not_followed(server: str) -> None:
    http = HttpClient(timeout=5)
    try:
        broken = await http.request("GET", f"{server}/broken")
        assert (broken.status_code, broken.reason_phrase) == (503, "Down For Now")
        with pytest.raises(ValueError):
            broken.json()
        moved = await http.request("GET", f"{server}/moved")
        assert moved.status_code == 302
        assert moved.headers["location"] == "/echo"
    finally:
        await http.aclose()


async def test_timeout_and_unreachable_are_told_apart(server: str) -> None:
    http = HttpClient(timeout=5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # bound, never listening: refused
    try:
        with pytest.raises(HttpTimeout, match=r"0\.2 s") as late:
            await http.request("GET", f"{server}/slow", timeout_seconds=0.2)
        assert late.value.maybe_sent  # the server had the request
        with pytest.raises(HttpError) as refused:
            await http.request("GET", f"http://127.0.0.1:{closed_port}/")
        assert not isinstance(refused.value, HttpTimeout)
        assert not refused.value.maybe_sent
        with pytest.raises(HttpError) as invalid:
            await http.request("GET", "not a url")
        assert not invalid.value.maybe_sent
        # The pool survives errors, and a closed client opens a new one on next use.
        assert (await http.request("GET", f"{server}/echo")).status_code == 200
        await http.aclose()
        assert (await http.request("GET", f"{server}/echo")).status_code == 200
    finally:
        await http.aclose()


async def test_a_connection_dropped_after_the_request_may_have_been_acted_on() -> None:
    """The server reads the whole request, then closes without answering: the request may
    have been carried out, and the error says so (the outbox then waits for a status)."""
    received: list[bytes] = []

    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(read_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = HttpClient(timeout=5)
    try:
        with pytest.raises(HttpError) as dropped:
            await http.request("POST", f"http://127.0.0.1:{port}/messages", json={"x": 1})
        assert dropped.value.maybe_sent and not isinstance(dropped.value, HttpTimeout)
        assert received and received[0].startswith(b"POST /messages")
    finally:
        await http.aclose()
        server.close()
        await server.wait_closed()


async def test_a_connection_that_cannot_be_made_in_time_was_never_sent() -> None:
    """A listener whose accept queue is full: the connect itself times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # fill the backlog; further connects hang in SYN
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
                fillers.append(filler)
            http = HttpClient(timeout=0.6)
            try:
                with pytest.raises(HttpTimeout) as hung:
                    await http.request("GET", f"http://127.0.0.1:{port}/")
                assert not hung.value.maybe_sent
                assert "no connection" in str(hung.value)
            finally:
                await http.aclose()
        finally:
            for filler in fillers:
                filler.close()


async def test_a_fault_inside_the_http_library_may_have_sent(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in aiohttp while it reads the answer (seen: an AttributeError on the response's
    headers) is an answer that did not come, not a crash of whoever sent the request."""

    async def broken_start(self: aiohttp.ClientResponse, connection: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'getall'")

    http = HttpClient(timeout=5)
    try:
        monkeypatch.setattr(aiohttp.ClientResponse, "start", broken_start)
        with pytest.raises(HttpError, match="AttributeError") as fault:
            await http.request("POST", f"{server}/echo", json={"a": 1})
        assert fault.value.maybe_sent and not isinstance(fault.value, HttpTimeout)
        monkeypatch.undo()
        assert (await http.request("GET", f"{server}/echo")).status_code == 200
    finally:
        await http.aclose()
