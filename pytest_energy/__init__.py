"""pytest-energy: meter the energy of ML training and inference, and gate CI on it."""

__version__ = "0.1.0"
