"""``python -m threadline``: the same command line as the ``threadline`` script."""

from __future__ import annotations

from threadline.cli._main import main

if __name__ == "__main__":
    raise SystemExit(main())
