"""What the console's pages read. Every function takes an open connection and returns plain data; the
pages run them on the console's database thread, never on the gateway's event loop."""
