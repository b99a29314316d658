"""Datasette plugin: the served archive is read-only at the HTTP level too, and never sniffed.

The database is opened ``mode=ro`` and no canned query writes, but Datasette 0.65 still
routes POSTs (to canned queries, debug forms) and answers some with a 500. This wrapper
answers every request that is not GET, HEAD or OPTIONS with ``405 Method Not Allowed``
before it reaches Datasette. Datasette's scratch ``_memory`` database (added when no file is
given on the command line, as ``archive.serve`` does) is removed: only the archive is served.

Every response carries ``X-Content-Type-Options: nosniff``: JSON, CSV and Atom answers hold
archived text (titles, anchor texts) that a browser must never sniff into HTML.
"""

from __future__ import annotations

from datasette import hookimpl

ALLOWED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MESSAGE = b"This archive is read-only: only GET and HEAD requests are served.\n"


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def read_only(scope, receive, send):
            if scope["type"] == "http" and scope.get("method", "GET").upper() not in ALLOWED_METHODS:
                await send({"type": "http.response.start", "status": 405,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"allow", b"GET, HEAD, OPTIONS")]})
                await send({"type": "http.response.body", "body": MESSAGE})
                return
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_nosniff(message):
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if k.lower() != b"x-content-type-options"]
                    message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
                await send(message)

            await app(scope, receive, send_nosniff)

        return read_only

    return wrap


@hookimpl
def startup(datasette):
    if "_memory" in datasette.databases and len(datasette.databases) > 1:
        datasette.remove_database("_memory")
