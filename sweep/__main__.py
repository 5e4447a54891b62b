"""`python -m sweep ...` is the `sweep` command (for machines where the console script is not on PATH)."""

from sweep.cli import main

main()
