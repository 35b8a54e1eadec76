"""The baseline for API speed: a bare FastAPI endpoint served the same way as jobyard."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from starlette.responses import JSONResponse

app = FastAPI()


@app.get("/bare/")
async def bare() -> JSONResponse:
    return JSONResponse({"data": {"id": "1", "status": "completed"}})


@app.post("/bare/")
async def bare_post() -> JSONResponse:
    return JSONResponse({"data": {"id": "1", "status": "pending"}})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        loop="asyncio",
        http="httptools",
    )
