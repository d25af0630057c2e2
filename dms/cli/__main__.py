"""`python -m dms.cli`: the `dms` command, for a process that has no `dms` script on
its PATH (`dms dev` starts its nodes this way, with its own interpreter)."""

from dms.cli import main

main()
