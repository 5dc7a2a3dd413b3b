from cinit.cli import main

raise SystemExit(main())
