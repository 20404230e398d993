"""The listening socket of every server wfrun runs (today: the HTTP API of ``wfrun serve``).

Why it is made here and not by uvicorn: ``wfrun serve`` binds before serving so the banner can
name the real port (``--port 0``). A socket made as ``socket(AF_INET, SOCK_STREAM)`` has
``proto == 0``, and asyncio sets ``TCP_NODELAY`` on accepted connections only when their
``proto`` is ``IPPROTO_TCP`` (``base_events._set_nodelay``); accepted sockets inherit the
listener's ``proto``. Without NODELAY, Nagle's algorithm holds a response's second small write
until the client's delayed ACK (~40 ms): every request on a reused keep-alive connection paid
it (issue 11: ``GET /balance/info`` 43–50 ms instead of 0.5 ms). So the socket is created
with ``IPPROTO_TCP`` (asyncio then sets NODELAY on each connection) and the listener gets
``TCP_NODELAY`` itself too (Linux copies it to accepted sockets).
"""

from __future__ import annotations

import socket


def listen_tcp(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A bound, listening TCP socket whose accepted connections get ``TCP_NODELAY``.

    Args:
        host: Bind address (an IPv6 literal selects ``AF_INET6``).
        port: Port; 0 picks a free one (read it with ``getsockname()``).
        backlog: ``listen`` backlog.

    Returns:
        The socket, inheritable (uvicorn may hand it to worker processes).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
