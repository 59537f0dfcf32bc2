"""``python -m nms``: the same as the ``nms`` command."""

from nms.app.cli import main

raise SystemExit(main())
