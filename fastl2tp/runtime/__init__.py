"""The only code that does I/O: sockets, timers, the event loop. It drives the sans-IO machines."""
