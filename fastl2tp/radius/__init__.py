"""RADIUS for the NAS, sans-IO: ``packets`` builds requests and reads replies (pyrad as the codec,
our ``dictionary``), ``client`` retransmits and fails over between servers. The runtime owns the
sockets and the clock (ARCHITECTURE.md, rule 1)."""
