"""Management: the control-socket protocol (``protocol``), the RouterOS menu tree and what its commands
do to a configuration (``menus``), and the RouterOS-style text of replies (``render``).

Pure: shared by the daemon (runtime/ctlserver.py) and the CLI (cli.py, console.py); no I/O here.
"""
