"""``python -m senet_profile.cli``."""

from senet_profile.cli import main

main()
