"""Microsoft Teams: activities in, Adaptive Cards out, through botbuilder's CloudAdapter."""
