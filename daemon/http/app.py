"""The FastAPI application of the HTTP hook, built over one ``App``."""

from __future__ import annotations

from fastapi import FastAPI

from daemon.wiring import App


def create_app(app: App) -> FastAPI:
    api = FastAPI(title="calpool", version="0.1.0")
    api.state.calpool = app

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
