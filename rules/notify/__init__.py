"""Alarm notifications off the box: the ladder's recipients, durable records, Apprise."""
