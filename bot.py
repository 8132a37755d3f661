"""`python bot.py` is `clmbot run`; with arguments it is the `clmbot` command itself."""

import sys

from clmbot.cli import cli, main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "run" in cli.commands and (
        not args or (args[0].startswith("--") and args[0] not in ("--help", "-h", "--version"))
    ):
        args = ["run", *args]
    main(args)
