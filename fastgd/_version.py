"""The version of fastgd, in one module: the package and its model files read it (keep
``pyproject.toml``'s ``version`` equal; a test checks)."""
__version__ = "0.1.0"
