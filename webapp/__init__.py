"""The dashboard and HTTP API application (FastAPI); `web.py` runs it under uvicorn."""
