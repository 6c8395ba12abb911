from bupose.cli import main

raise SystemExit(main())
