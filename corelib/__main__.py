"""``python -m corelib``: the ``corelib`` command line."""

from corelib._cli import main

raise SystemExit(main())
