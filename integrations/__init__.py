"""Optional exports of the venue's data to other systems on the venue's own network."""
