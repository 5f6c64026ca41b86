"""``python -m cli``: the same as the ``engine`` command."""

from cli.main import main

main()
