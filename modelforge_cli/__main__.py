"""`python -m modelforge_cli`: the same as the `modelforge` command."""

from modelforge_cli.main import main

main()
