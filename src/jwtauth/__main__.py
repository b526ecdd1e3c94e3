"""``python -m jwtauth`` and the ``jwtauth`` command: the server's command line (API.md).

The command is installed with every install of the package, the server's dependencies
only with the ``[server]`` extra: without them, say what to install instead of a trace.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .server.cli import main as server_main
    except ModuleNotFoundError as exc:
        if (exc.name or "jwtauth").partition(".")[0] == "jwtauth":
            raise  # our own module missing is a bug, not a missing extra
        sys.exit(
            f"the jwtauth command runs the jwtauth server, which needs {exc.name!r}: "
            "pip install 'jwtauth-kit[server]'"
        )
    server_main()


if __name__ == "__main__":
    main()
