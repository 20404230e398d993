"""``python -m wfrun`` runs the CLI."""

from wfrun.cli.main import main

if __name__ == "__main__":
    main()
