"""What one outbound HTTP request costs this machine's CPU, client by client.

Why wadesk's own outbound HTTP (Graph API sends, media, integrations) goes through aiohttp
(``wadesk/httpclient.py``, docs/decisions/0004-aiohttp-for-outbound-http.md): every automated
reply is a Graph API send and often an integration call. A local keep-alive HTTP/1.1 server
(asyncio, in a process of its own, answering a Graph-shaped JSON body) takes ``--requests``
POSTs of a Graph-shaped text message from each client, ``--concurrency`` at a time; the table
prints the client process's CPU time (user + system) per request. The first row is the
baseline of the same run: a bare asyncio client writing the request bytes and reading the
answer on kept-alive connections (the least any Python client can do).

Run `.venv/bin/python bench/httpclient.py [--requests 4000] [--concurrency 8] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

BODY = json.dumps(
    {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "447700900001", "wa_id": "447700900001"}],
        "messages": [{"id": "wamid.HBgLNDQ3NzAwOTAwMDAxFQIAERgSQUJDREVGMDEyMzQ1Njc4OQA="}],
    }
).encode()
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)
PAYLOAD = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "447700900001",
    "type": "text",
    "text": {"body": "Your order 12345 is on its way: arriving tomorrow.", "preview_url": True},
}
PATH = "/v21.0/106540352242922/messages"


class _Graph(asyncio.Protocol):
    """Answers every complete request (headers + Content-Length body) with ``ANSWER``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(ANSWER)


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Graph, sock=sock)
        await server.serve_forever()

    asyncio.run(main())


async def _bare(url: str, requests: int, concurrency: int) -> Callable[[], Awaitable[None]]:
    host, port = url.split("//")[1].split(":")
    body = json.dumps(PAYLOAD).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer t\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(concurrency):
        idle.append(await asyncio.open_connection(host, int(port)))

    async def one() -> None:
        reader, writer = idle.pop()
        writer.write(head + body)
        headers = await reader.readuntil(b"\r\n\r\n")
        length = int(headers.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        json.loads(await reader.readexactly(length))
        idle.append((reader, writer))

    return one


async def measure(one: Callable[[], Awaitable[Any]], requests: int, concurrency: int) -> float:
    """CPU µs per request, after a warm-up, ``concurrency`` requests in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def gated() -> None:
        async with gate:
            await one()

    await asyncio.gather(*(gated() for _ in range(min(requests // 10, 200))))
    cpu = time.process_time()
    await asyncio.gather(*(gated() for _ in range(requests)))
    return (time.process_time() - cpu) / requests * 1e6


async def run(url: str, requests: int, concurrency: int) -> list[dict[str, Any]]:
    import httpx

    from wadesk.httpclient import HttpClient

    rows: list[dict[str, Any]] = []
    rows.append(
        {
            "client": "asyncio streams, bytes by hand (baseline)",
            "cpu_us": await measure(await _bare(url, requests, concurrency), requests, concurrency),
        }
    )
    headers = {"Authorization": "Bearer t"}
    wadesk = HttpClient(timeout=10)
    try:

        async def with_wadesk() -> None:
            (await wadesk.request("POST", url + PATH, headers=headers, json=PAYLOAD)).json()

        rows.append(
            {
                "client": "wadesk HttpClient (aiohttp)",
                "cpu_us": await measure(with_wadesk, requests, concurrency),
            }
        )
    finally:
        await wadesk.aclose()
    async with httpx.AsyncClient(
        timeout=10, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
    ) as client:

        async def with_httpx() -> None:
            (await client.post(url + PATH, headers=headers, json=PAYLOAD)).json()

        rows.append(
            {
                "client": "httpx AsyncClient (before: what wadesk used)",
                "cpu_us": await measure(with_httpx, requests, concurrency),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per client")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        rows = asyncio.run(run(url, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.join(5)
    baseline = rows[0]["cpu_us"] or 1
    for row in rows:
        row["cpu_us"] = round(row["cpu_us"])
        row["cpu_vs_baseline"] = round(row["cpu_us"] / baseline, 1)
    if args.json:
        print(
            json.dumps({"requests": args.requests, "concurrency": args.concurrency, "rows": rows})
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"One Graph-shaped POST, client by client ({args.requests} requests, "
        f"{args.concurrency} in flight)"
    )
    for column in ("client", "CPU µs/request", "CPU vs baseline"):
        table.add_column(column, justify="left" if column == "client" else "right")
    for row in rows:
        table.add_row(row["client"], str(row["cpu_us"]), f"{row['cpu_vs_baseline']}x")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
