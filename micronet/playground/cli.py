"""`micronet-playground`: bind a loopback port, print the URL, open the browser, serve until Ctrl-C.

The web stack is an optional extra, imported only here, so that the rest of
micronet (and `--help`) works without it.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import re
import socket
import sys
import threading
import webbrowser

__all__ = ["main"]

_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")
INSTALL_HINT = "error: the playground needs its web extra: pip install 'micronet-nn[playground]'"


def _arguments(argv, prog):
    from micronet.commands import CommandParser

    parser = CommandParser(
        prog=prog,
        description="Watch micronet train in your browser; export the session as a config for micronet-train.",
        epilog="examples:\n"
        "  %(prog)s                        # http://127.0.0.1:8765/, opened in your browser\n"
        "  %(prog)s --port 0 --no-browser  # any free port; print the URL only\n"
        "  %(prog)s circles                # open on a config: a YAML file or a shipped name\n"
        "  %(prog)s --host 0.0.0.0 --allow-host lab-pc.local --max-sessions 30   # a classroom",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_version()
    parser.add_argument("config", nargs="?",
                        help="open on this config: a YAML file or a shipped config's name, as micronet-train reads it")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else is reachable by others)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    parser.add_argument("--max-sessions", type=int, default=8, metavar="N",
                        help="browser tabs served at once (default 8); a new one closes the one idle longest")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a further host name the page may be reached by (e.g. the machine's name on the "
                             "classroom network); repeatable. The Host and Origin checks stay on")
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the URL is printed (so --port 0 prints the port it got)."""
    bare = host.strip("[]")
    infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def _allowed_hosts(host: str) -> list[str] | None:
    """The Host header names to answer to: loopback names, plus the given host; None for a wildcard bind."""
    from micronet.playground.server import LOOPBACK_HOSTS

    bare = host.strip("[]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return [*LOOPBACK_HOSTS, host.lower()]
    if address.is_unspecified:
        return None
    return [*LOOPBACK_HOSTS, f"[{bare}]" if address.version == 6 else bare]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `micronet-playground` and `python -m micronet.playground`; returns the exit status."""
    from micronet.commands import program_name

    prog = program_name("playground", sys.argv[0] if sys.argv else "")
    try:
        args = _arguments(sys.argv[1:] if argv is None else argv, prog)
    except ValueError as e:  # a usage mistake: argparse's usage line, then one error line
        print(f"{getattr(e, 'usage', '')}error: {e}", file=sys.stderr)
        return 2
    try:
        import starlette  # noqa: F401 - imported only to see that it is installed
        import uvicorn
        import websockets  # noqa: F401 - imported only to see that it is installed
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    from micronet.playground.server import LOOPBACK_HOSTS, create_app, guarded_protocol, quiet_logs

    # Sessions train in threads of their own; on these small matrices a multi-threaded BLAS
    # only fights them (and itself) for the cores: frames cost 5x more on 2 cores.
    threadpool_limits(1)

    if not 0 <= args.port <= 65535:
        print(f"error: --port must be in 0..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.max_sessions < 1:
        print(f"error: --max-sessions must be >= 1, got {args.max_sessions}", file=sys.stderr)
        return 2
    for name in args.allow_host:
        if not _HOST_NAME.fullmatch(name):
            print(f"error: --allow-host takes a host name such as lab-pc.local, got {name!r}", file=sys.stderr)
            return 2
    setup = None
    if args.config is not None:
        from micronet.config import ConfigError, load_config
        from micronet.data import DataError
        from micronet.playground.trainer import SetupError, open_config

        try:
            setup = open_config(load_config(args.config))
        except (ConfigError, DataError, SetupError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not is_loopback(args.host):
        print(f"warning: --host {args.host} is not a loopback address: anyone who can reach this machine "
              "can use the playground and its CPU", file=sys.stderr)
    try:
        sock = _listen(args.host, args.port)
    except OSError as e:
        in_use = e.errno == errno.EADDRINUSE
        why = "is in use; try --port 0 for a free one" if in_use else f"cannot be used: {e.strerror}"
        print(f"error: {args.host} port {args.port} {why}", file=sys.stderr)
        return 2
    except socket.gaierror as e:
        print(f"error: --host {args.host!r} cannot be resolved: {e.strerror}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if ipaddress.ip_address(sock.getsockname()[0]).is_unspecified else args.host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}/"
    # A wildcard bind (a classroom) answers to the loopback names, this machine's name, the --allow-host
    # names and bare IP addresses: the Host check stays, and no DNS-rebinding page can name a bare address.
    named = _allowed_hosts(args.host)
    wildcard = named is None
    hosts = [*(named or [*LOOPBACK_HOSTS, socket.gethostname().lower()]), *(name.lower() for name in args.allow_host)]
    app = create_app(hosts, max_sessions=args.max_sessions, setup=setup, any_address=wildcard)
    # h11 with a deadline for request heads and a cap on connections (see guarded_protocol)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="auto", ws_max_size=4096,
                            timeout_graceful_shutdown=2, http=guarded_protocol())
    server = uvicorn.Server(config)
    print(f"micronet playground: {url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        config.load()  # uvicorn configures its loggers here: the rate limit goes on after
        quiet_logs()
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down: one line, not its traceback
        print("micronet playground stopped", file=sys.stderr)
        return 130
    finally:
        sock.close()
    return 0
