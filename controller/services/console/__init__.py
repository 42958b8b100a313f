"""The operator console (browser): an aiohttp server with a WebSocket push of live numbers,
the session history with downloads, and a technician page behind a token."""
