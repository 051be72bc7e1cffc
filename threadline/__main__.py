"""``python -m threadline``: the same command line as the ``threadline`` script."""

from __future__ import annotations

from threadline._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
