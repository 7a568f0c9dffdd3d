"""`opsaudit web [--host H] [--port M]`: the web pages, alone (interface.md, "The web")."""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Annotated

import typer

from opsaudit.cli.app import DbOption, LangOption, StoreOption, app, settings_for
from opsaudit.errors import OpsauditError, os_reason
from opsaudit.i18n.render import Message

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]


@app.command()
def web(host: HostOption = "127.0.0.1", port: PortOption = 8400, lang: LangOption = None, db: DbOption = None,
        store: StoreOption = None) -> None:
    """Serve the web pages where people act on findings and review reports, until stopped (Ctrl-C)."""
    from opsaudit.i18n import resolve_language, text

    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    server = web_server(settings, host, port)
    typer.echo(text("cli.web.serving", language, url=f"http://{host}:{port}", address=settings.web_url, keys="Ctrl-C"))
    server.run()


def web_server(settings, host: str, port: int):
    """A uvicorn server of the app, checked (store, directory, port) before it is returned."""
    import uvicorn

    from opsaudit.web.app import create_app

    application = create_app(settings)
    _require_free(host, port)
    # Its own access log would print sign-in links' tokens (they are in the path): none.
    config = uvicorn.Config(application, host=host, port=port, access_log=False, log_level="warning",
                            proxy_headers=False)
    return uvicorn.Server(config)


def _require_free(host: str, port: int) -> None:
    """A clear line when the port is taken, instead of the server's start-up failure."""
    with closing(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OpsauditError(Message.of("error.web.port", port=port, host=host, reason=_bind_reason(exc),
                                           option="--port", command="opsaudit serve",
                                           serve_option="--web-port")) from None


def _bind_reason(error: OSError) -> Message | str:
    """Why the port cannot be had: the two refusals of a bind a person meets (a port taken, an
    address not of this machine) in the reader's language, any other as os_reason words it."""
    if error.errno == errno.EADDRINUSE:
        return Message.of("error.web.in_use")
    if error.errno == errno.EADDRNOTAVAIL:
        return Message.of("error.web.not_local")
    return os_reason(error)


@contextmanager
def serving_in_background(server) -> Iterator[None]:
    """The web server in a thread beside `opsaudit serve`'s Prefect work, stopped with it."""
    thread = threading.Thread(target=server.run, name="opsaudit-web", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
