"""The console scripts: micronet-train, -sweep, -predict, -export, -graph and -playground.

Each entry point is tiny on purpose. It installs a Ctrl-C handler before
importing its command, whose imports (NumPy and friends) take a moment, so
an interrupt while starting is one line and exit status 130 rather than a
traceback; then it hands over to the command's `main()`. Stdlib only.
"""

import argparse
import importlib
import os
import signal
from types import FrameType
from typing import Any, NoReturn

__all__ = ["CommandParser", "program_name", "version_text", "starting", "started", "train", "sweep", "predict",
           "export", "graph", "playground"]


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted while starting; nothing was written\n")
    os._exit(128 + signum)


def starting() -> None:
    """Until the command takes over the signals, Ctrl-C is one line and exit 130 (nothing is written yet)."""
    signal.signal(signal.SIGINT, _interrupted_while_starting)


def started() -> None:
    """The command's imports are done: Ctrl-C is a KeyboardInterrupt again, until it installs its own handler."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def program_name(command: str, argv0: str) -> str:
    """How the user started `command` (e.g. "train"), for usage lines: micronet-train or python -m micronet.train.

    `argv0` is `sys.argv[0]`, which the command's main() reads.
    """
    started_as = os.path.basename(argv0)
    if started_as in ("__main__.py", f"{command}.py", "-m", "-c"):
        return f"python -m micronet.{command}"
    return f"micronet-{command}"


def version_text(prog: str) -> str:
    """What `--version` prints: the program and the installed distribution's version."""
    from importlib.metadata import version

    return f"{prog} (micronet-nn) {version('micronet-nn')}"


class _Version(argparse.Action):
    """--version, looked up only when asked for (reading the installed metadata costs ~30 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the program's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object,
                 option_string: str | None = None) -> None:
        print(version_text(parser.prog))  # to stdout, as argparse's own version action does
        parser.exit()


class CommandParser(argparse.ArgumentParser):
    """argparse, but a usage mistake raises instead of exiting, carrying the usage line.

    The command's `run_cli` prints the usage line and one `error:` line and
    returns exit status 2, so `main(argv)` can be called (and tested) like
    any function.
    """

    def __init__(self, *args: Any, usage_error: type[Exception] = ValueError, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_error = usage_error

    def add_version(self) -> None:
        """A --version option that prints `version_text` and exits."""
        self.add_argument("--version", action=_Version)

    def error(self, message: str) -> NoReturn:
        error = self.usage_error(message)
        error.usage = self.format_usage()  # type: ignore[attr-defined]  # run_cli prints it before the error
        raise error


def _run(module: str) -> int:
    starting()
    main = importlib.import_module(module).main
    started()
    status: int = main()
    return status


def train() -> int:
    """micronet-train: python -m micronet.train."""
    return _run("micronet.train")


def sweep() -> int:
    """micronet-sweep: python -m micronet.sweep."""
    return _run("micronet.sweep")


def predict() -> int:
    """micronet-predict: python -m micronet.predict."""
    return _run("micronet.predict")


def export() -> int:
    """micronet-export: python -m micronet.export."""
    return _run("micronet.export")


def graph() -> int:
    """micronet-graph: python -m micronet.graph."""
    return _run("micronet.graph")


def playground() -> int:
    """micronet-playground: python -m micronet.playground."""
    return _run("micronet.playground.cli")
