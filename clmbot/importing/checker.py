"""`python -m clmbot.importing.checker`: the second process of a large import (see
`clmbot.importing.checking`). Its standard output is the pipe to the importer, so anything
else that would print goes to standard error."""

import sys

from clmbot.importing.checking import serve

if __name__ == "__main__":
    pipe = sys.stdout.buffer
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, pipe)
