"""`python -m opsaudit` is the `opsaudit` command."""

from opsaudit.cli import main

main()
