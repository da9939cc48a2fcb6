from hatchctl.cli import main

raise SystemExit(main())
