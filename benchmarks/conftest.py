"""The reference suite: its task/model options and fixtures come from pytest-energy's reference plugin."""

pytest_plugins = ["pytest_energy.reference.plugin"]
