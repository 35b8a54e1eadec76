"""The baseline for API speed: a bare FastAPI endpoint served the same way as jobyard."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.responses import JSONResponse

from benchmarks import deploy

app = FastAPI()
PACKAGES_ROOT = Path(__file__).resolve().parent.parent  # the directory holding `benchmarks`


@app.get("/bare/")
async def bare() -> JSONResponse:
    return JSONResponse({"data": {"id": "1", "status": "completed"}})


@app.post("/bare/")
async def bare_post() -> JSONResponse:
    return JSONResponse({"data": {"id": "1", "status": "pending"}})


@app.post("/bare/clock/")
async def bare_clock() -> JSONResponse:
    """When the handler ran (seconds since the epoch): how long a request takes to reach
    a handler, as a launch's `created` stamp tells it for jobyard."""
    return JSONResponse({"data": {"at": time.time()}})


@contextmanager
def served() -> Iterator[str]:
    """This app in a process of its own, served as jobyard is (uvicorn, httptools, asyncio);
    its URL."""
    port = deploy.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_app", str(port)],
        cwd=PACKAGES_ROOT,  # `benchmarks` is found from there, whatever the caller's directory
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deploy.wait_ready(url, server, "/bare/", "the bare FastAPI server")
        yield url
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        loop="asyncio",
        http="httptools",
    )
