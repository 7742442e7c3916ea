# (package marker so that `from fastl2tp.includes cimport linux` works)
