"""Open data catalog and integrated GIS portal for Japanese municipalities."""

__version__ = "0.1.0"
