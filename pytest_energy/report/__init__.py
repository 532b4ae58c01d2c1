"""The reports: each lays out a RunResult (pytest_energy.records) in its own format. format (the one formatter),
series and tables (the rows every output shares), terminal, markdown, json (pytest-benchmark's layout), html
(one self-contained page) with plots (PNG figures); outputs writes the requested files."""
