"""`python -m ptx`."""

from ptx.cli import main

raise SystemExit(main())
