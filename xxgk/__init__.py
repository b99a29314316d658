"""xxgk-archive: a scheduled crawler and archive for Chinese university disclosure portals."""

__version__ = "0.1.0"
