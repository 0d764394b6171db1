"""The client wadesk's own outbound HTTP goes through: the Graph API (sends, media,
templates) and the companies' integrations (automation rules).

It wraps aiohttp, not httpx: on this project's 2-core reference machine an httpx request
costs ~0.9-1.4 ms of CPU and an aiohttp request ~0.1 ms (``bench/httpclient.py`` prints both
against the same local server); with one send and often one integration call per automated
reply, httpx was a third of the server's CPU in ``bench/automation.py``
(docs/decisions/0004-aiohttp-for-outbound-http.md). The interface is the few things wadesk
reads of an answer, so callers and their error handling do not depend on the library.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from multidict import CIMultiDictProxy

log = structlog.get_logger(__name__)


class HttpError(Exception):
    """The request did not get an answer: connection refused or reset, invalid URL...

    ``maybe_sent`` is False only when the request certainly never left: no connection could
    be made. After that, a lost answer says nothing about whether the server acted on it.
    """

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class HttpTimeout(HttpError):
    """No complete answer within the timeout."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return jsonlib.loads(self.content)


CONNECT_SHARE = 0.5  # of the total timeout, for getting a connection


class HttpClient:
    """One connection pool per process. The aiohttp session is made on first use, inside
    the running event loop (aiohttp binds it to that loop)."""

    def __init__(self, *, timeout: float, max_connections: int = 200) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        timeout_seconds: float | None = None,
    ) -> HttpResponse:
        """Send a request and read the whole answer. ``files`` (name -> (file name, bytes,
        MIME type)) with ``data`` makes a multipart form. Redirects are not followed."""
        body: aiohttp.FormData | None = None
        if files is not None:
            body = aiohttp.FormData()
            for key, value in (data or {}).items():
                body.add_field(key, value)
            for key, (filename, content, mime) in files.items():
                body.add_field(key, content, filename=filename, content_type=mime)
        elif data is not None:
            body = aiohttp.FormData(dict(data))
        total = timeout_seconds or self._timeout
        try:
            async with self._pool().request(
                method,
                url,
                headers=headers,
                json=json,
                data=body,
                allow_redirects=False,
                # A connect timeout of its own, shorter than the total: a connection that
                # could not be made is told apart from an answer that did not come.
                timeout=aiohttp.ClientTimeout(total=total, connect=total * CONNECT_SHARE),
            ) as response:
                content = await response.read()
                answer_headers: CIMultiDictProxy[str] = response.headers
                return HttpResponse(response.status, response.reason or "", answer_headers, content)
        except aiohttp.ConnectionTimeoutError as exc:
            raise HttpTimeout(
                f"no connection within {total * CONNECT_SHARE:g} s", maybe_sent=False
            ) from exc
        except TimeoutError as exc:
            raise HttpTimeout(f"no answer within {total:g} s", maybe_sent=True) from exc
        except (aiohttp.ClientConnectorError, aiohttp.InvalidURL, ValueError) as exc:
            raise HttpError(str(exc) or type(exc).__name__, maybe_sent=False) from exc
        except aiohttp.ClientError as exc:
            raise HttpError(str(exc) or type(exc).__name__, maybe_sent=True) from exc
        except Exception as exc:
            # A fault inside the HTTP library itself, not an error it reports: the request may
            # have been written, so the caller treats it as an answer that did not come (the
            # outbox waits for a status, an integration falls back) instead of crashing the
            # round that made it.
            log.error("http.client_fault", method=method, error=type(exc).__name__, exc_info=True)
            raise HttpError(f"HTTP client fault: {type(exc).__name__}", maybe_sent=True) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
