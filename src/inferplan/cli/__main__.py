"""`python -m inferplan.cli`: the same entry point as the `inferplan` command."""

from inferplan.cli import main

main()
