"""How tests run `satchel` in a subprocess, as a user would, with the test failure points
armed (tests/failpoints.py). Run from the repository root, where `tests` is importable."""

RUN = "import sys, tests.failpoints; from installer.cli import main; sys.exit(main(sys.argv[1:]))"
