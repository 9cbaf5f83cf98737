"""`python -m nsc_reconcile`: the command-line interface."""

from nsc_reconcile.cli import main

main()
