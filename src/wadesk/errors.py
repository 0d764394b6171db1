"""One error shape for the API: ``{"error": {"code": "...", "message": "..."}}``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.extra), status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = "; ".join(_describe(e) for e in errors[:5]) or "invalid request"
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))} for e in errors
        ]
        return JSONResponse(
            error_body("invalid_request", message, details=details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        """A number past what the database holds (an id of 30 digits), a value it refuses:
        the request is wrong, not the server."""
        log.info("request.out_of_range", error=type(exc).__name__)
        return JSONResponse(
            error_body("out_of_range", "A value in the request is out of range or malformed."),
            status_code=422,
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_data_error(exc):
            return await _out_of_range(request, exc)
        if database_unavailable(exc):
            log.warning("database.unavailable", error=type(exc.orig).__name__)
            return JSONResponse(
                error_body("unavailable", "The database is unavailable; try again."),
                status_code=503,
                headers={"Retry-After": "5"},
            )
        raise exc

    @app.exception_handler(OSError)
    async def _os_error(_request: Request, exc: OSError) -> JSONResponse:
        log.warning("backend.unavailable", error=type(exc).__name__)
        return JSONResponse(
            error_body("unavailable", "A backend service is unavailable; try again."),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(_request: Request, _exc: PoolTimeout) -> JSONResponse:
        return JSONResponse(
            error_body("unavailable", "The server is overloaded; try again."),
            status_code=503,
            headers={"Retry-After": "1"},
        )


def _sqlstate(exc: DBAPIError) -> str:
    cause = exc.orig.__cause__ if exc.orig is not None else None
    sqlstate = getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else ""


def database_unavailable(exc: DBAPIError) -> bool:
    """The database is away (connection lost or refused, shutting down, restarting): the
    request may be retried, so the answer is 503, not 500. SQLSTATE classes 08 (connection
    exception) and 57 (operator intervention: "the database system is shutting down")."""
    return (
        exc.connection_invalidated
        or _sqlstate(exc)[:2] in ("08", "57")
        or "connect" in str(exc.orig).lower()
    )


def backend_unavailable(exc: BaseException) -> bool:
    """A failure that says "try again later" rather than "this request is wrong": the database
    away (also asyncpg's own errors raised while connecting, such as "the database system is
    shutting down", which SQLAlchemy does not wrap), the pool exhausted, a socket refused."""
    if isinstance(exc, DBAPIError):
        return database_unavailable(exc)
    if isinstance(exc, PoolTimeout | OSError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57")


def _is_data_error(exc: DBAPIError) -> bool:
    """PostgreSQL's "data exception" class (SQLSTATE 22...), also raised by asyncpg before
    sending when a parameter does not fit its column (an id past 64 bits)."""
    return _sqlstate(exc).startswith("22")
