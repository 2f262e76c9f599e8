"""``python -m senet_profile``: the command line."""

from senet_profile.cli import main

main()
