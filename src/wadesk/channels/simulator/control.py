"""``/control``: set the fault plan and read the counters, over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from wadesk.channels.simulator.faults import FaultPlan

if TYPE_CHECKING:
    from wadesk.channels.simulator.app import Simulator


def control_router(sim: Simulator) -> APIRouter:
    router = APIRouter(prefix="/control", include_in_schema=False)

    @router.post("/faults", response_model=None)
    async def set_faults(request: Request) -> JSONResponse | dict[str, Any]:
        try:
            plan = FaultPlan.from_dict(orjson.loads(await request.body()))
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            return JSONResponse({"error": "invalid fault plan", "details": errors}, status_code=422)
        sim.set_faults(plan)
        return plan.to_dict()

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return sim.faults.plan.to_dict()

    @router.get("/state")
    async def state() -> dict[str, Any]:
        return sim.state()

    return router
