"""One module per transport: the section a profile of that transport carries."""
