"""The local web playground: watch micronet train, live, and export the run as a config.

`micronet-playground` (or `python -m micronet.playground`) serves a page on
127.0.0.1 where you pick a dataset and a network and watch them train. The
training is micronet's own loop with the compiled executor, server-side,
one trainer per browser tab; "Export config" gives the YAML with which
`micronet-train` reproduces the session number for number. It needs the
web extra: `pip install 'micronet-nn[playground]'`.
"""

from micronet.playground.cli import main

__all__ = ["main"]
