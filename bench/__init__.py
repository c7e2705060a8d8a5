"""fastgd's benchmark suite (pytest-benchmark); see ``bench/README.md``."""
