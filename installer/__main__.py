"""`python -m installer`, and the entry point of the kit's frozen program: the satchel
command. A frozen program has no `python -m`, so it also runs, by name, the one module
Satchel starts as a subprocess of another tool: helm's post-renderer."""

import sys

from installer.cli import main

if sys.argv[1:3] == ["-m", "installer.targets.postrender"]:
    from installer.targets import postrender

    sys.exit(postrender.main(sys.argv[2:]))
sys.exit(main())
