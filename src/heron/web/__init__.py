"""HTTPS for browsers: pages, WebSockets, API and metrics (aiohttp)."""
