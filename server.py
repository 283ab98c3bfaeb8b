"""ExpertConnect from a checkout: `python server.py [command] [--config PATH]`, the same command
line as the installed `expertconnect` program (expertconnect/cli.py). Without --config it reads
the config.yaml beside this file."""

import sys
from pathlib import Path

from expertconnect.cli import main

if __name__ == "__main__":
    sys.exit(main(default_config=Path(__file__).resolve().parent / "config.yaml"))
