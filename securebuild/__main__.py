"""``python -m securebuild`` is the same as the ``securebuild`` console script."""

from securebuild.cli import main

raise SystemExit(main())
