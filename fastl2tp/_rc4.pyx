"""RC4 and MPPE keying (Cython)."""
