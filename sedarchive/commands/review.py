"""``sedarchive review ARCHIVE``: serve the page where an expert names clusters (loopback by default)."""
from __future__ import annotations

import argparse
import getpass
import sys

from sedarchive.commands import _options


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("review", help="serve the page where an expert names, merges, excludes and splits clusters",
                       description="Serve the review page. Every decision is saved at once to ARCHIVE/labels.yaml "
                                   "(with who and when) and rewrites ARCHIVE/proportions.zarr.")
    _options.add_archive(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME[:PORT]",
                   help="also accept this Host header (repeatable): a name this server is reached by off loopback "
                        "(review.lab.example), or HOST:PORT through a tunnel (localhost:9000 behind `ssh -L "
                        "9000:localhost:8765 node`); this machine's name and the --host address are accepted anyway")
    p.add_argument("--user", default=None, help="who is deciding, recorded in labels.yaml (default: login name)")
    p.add_argument("--quiet", action="store_true", help="no request log")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from catalog import Archive
    from catalog.errors import SedarchiveError
    from sedarchive.review import make_server

    archive = Archive.open(args.archive)
    if not 0 <= args.port <= 65535:
        raise SedarchiveError(f"port {args.port} is not between 0 and 65535")
    user = args.user or getpass.getuser()
    try:
        server = make_server(archive, args.host, args.port, user=user, quiet=args.quiet,
                             allow_hosts=args.allow_host)
    except OSError as err:
        raise SedarchiveError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    host, port = server.server_address[:2]
    if server.token:
        import socket

        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        print(f"review: warning: listening on {args.host}, reachable from other machines; requests need the "
              f"token in the URL below", file=sys.stderr)
        print(f"review: http://{shown}:{port}/?token={server.token} as {user} (Ctrl-C stops)", flush=True)
    else:
        print(f"review: http://{host}:{port}/ as {user} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("review: stopped; every decision is in labels.yaml", file=sys.stderr)
    finally:
        server.server_close()
    return 0
