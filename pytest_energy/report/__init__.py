"""Reports built from plain result dicts: PNG figures (plots) and a self-contained HTML page (html)."""
