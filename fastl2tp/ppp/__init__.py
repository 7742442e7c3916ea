"""PPP (RFC 1661 and friends), sans-IO: one negotiation automaton, LCP, authentication, NCPs."""
