"""The bench suite (pytest-benchmark), installed as ``senet_profile_bench``: `senet-profile bench` runs it."""
