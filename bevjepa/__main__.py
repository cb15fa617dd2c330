"""``python -m bevjepa`` runs the bevjepa Lightning CLI."""

from bevjepa.cli import main

main()
