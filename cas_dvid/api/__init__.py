"""DVID's HTTP API as a falcon WSGI app."""

from cas_dvid.api.app import create_app
from cas_dvid.api.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
