"""The second process of a large import (see `clmbot.importing.checking`), started as
`python -I -c …` so that nothing from the working directory is imported. Its standard output
is the pipe to the importer, so anything else that would print goes to standard error."""

import sys

from clmbot.importing.checking import serve


def main() -> None:
    pipe = sys.stdout.buffer
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, pipe)


if __name__ == "__main__":
    main()
