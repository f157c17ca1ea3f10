"""The `server.limits` config section: what one client, or all of them, may hold of the gateway.

    server:
      limits:
        header_timeout_s: 10          # a connection must send a request's whole header within this long
        body_timeout_s: 30            # a request's body may pause this long at most (408 and closed after)
        max_header_bytes: 65536       # a request line and header fields larger than this: 414 / 431
        send_timeout_s: 60            # a response may wait this long for a client that does not read it
        idle_timeout_s: 5             # a keep-alive connection with no request in flight is closed after this
        max_connections: 4096         # open connections in all (and never more than the file limit allows)
        max_connections_per_client: 256   # open connections from one client address
        fd_reserve: 64                # file descriptors kept free for the audit log, the ledger, backends
        unhealthy_after_s: 60         # /healthz fails once a part has been unable to serve this long

Why (issue 14): ~1,100 idle connections used up the process's file descriptors; the audit writer could not
open a file, the gateway refused every request from then on, and /healthz still said ok. Connections that
send nothing, or a header byte at a time, are now closed; a client cannot hold more than its share; new
connections are refused (503, `connection: close`) before the descriptors run out, so the writers always
find the few they need; and a part that stays unable to serve makes /healthz fail, so an orchestrator
restarts the process. The soft RLIMIT_NOFILE is raised to the hard one at start.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from owstack.config.base import Section


class ServerLimits(Section):
    #: seconds a connection has to send a request's complete header (from its first byte, or from the
    #: connection's opening for the first request): slow or silent clients are closed (408)
    header_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    #: seconds a request's body may go without a byte arriving (the gateway is not the one holding it up):
    #: after that the client gets 408 and the connection is closed, instead of a request open forever
    body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    #: bytes a request line and its header fields may take (an incomplete header counts too): 414 for a
    #: longer request line, 431 for longer fields, and the connection is closed
    max_header_bytes: Annotated[int, Field(ge=4096, le=16 * 1024 * 1024)] = 64 * 1024
    #: seconds a response may wait for a client that reads none of it (the connection's buffers full): then
    #: the connection is dropped and the request ends as abandoned, freeing its backend slot
    send_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    #: seconds a keep-alive connection may stay idle between requests
    idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    #: open connections in all; the file limit lowers it when it allows fewer (minus `fd_reserve`)
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 4096
    #: open connections from one client address (behind a proxy, the proxy is one client: raise it)
    max_connections_per_client: Annotated[int, Field(ge=1, le=1_000_000)] = 256
    #: file descriptors kept free for the gateway's own files and upstream connections
    fd_reserve: Annotated[int, Field(ge=8, le=100_000)] = 64
    #: /healthz answers 503 once a part (the audit log, the ledger's write-ahead log) has been unable to
    #: serve for this long: a restart is the remedy left (/readyz says 503 at once, for load balancers)
    unhealthy_after_s: Annotated[float, Field(ge=1, le=86_400)] = 60.0
