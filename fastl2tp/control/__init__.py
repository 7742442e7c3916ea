"""The L2TP control plane (RFC 2661 §5-§7), sans-IO: transport, tunnel and session machines, endpoint."""
