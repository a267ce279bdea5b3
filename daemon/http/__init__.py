"""The HTTP hook: FastAPI routes served by uvicorn inside the daemon process."""
