"""`/docs`: Swagger UI served from the files the `swagger-ui-bundle` package installs, so the
page works where the server cannot reach a CDN (docs/api.md, "Reading the API")."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
STATIC_PATH = "/docs/static"
# Swagger UI asks a public validator about the document unless told not to: nothing leaves
# the server, and the token a reader enters survives a reload.
PARAMETERS = {"persistAuthorization": True, "validatorUrl": None}


def install(app: FastAPI) -> None:
    """Serve `/docs` and its assets; they need no credentials, like `/openapi.json`. ReDoc
    is not served: no package ships it, and a CDN copy would not work offline."""
    app.mount(STATIC_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
            swagger_ui_parameters=PARAMETERS,
        )
