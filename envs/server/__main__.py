"""``python -m envs.server``: the ``edmarl-server`` command."""

from envs.server.app import main

if __name__ == "__main__":
    raise SystemExit(main())
