"""``python -m craftlib``: see :mod:`craftlib.cli`."""

from craftlib.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
