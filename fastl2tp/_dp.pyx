"""Data plane (Cython): per-packet L2TP/PPP work in batches. Filled in by the data-plane work."""
