"""pytest-energy inside other tools' workflows. Each module is imported only when its tool is in use."""
