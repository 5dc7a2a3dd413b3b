"""Entry script of the standalone (frozen) cinit: the same entry point as the console script."""

from cinit.cli import main

raise SystemExit(main())
