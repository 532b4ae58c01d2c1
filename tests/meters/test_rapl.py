"""The RAPL meter against powercap files written by the tests."""

from __future__ import annotations

import os

import pytest

from pytest_energy.errors import MeasurementError, MeterUnavailable
from pytest_energy.meters.rapl import RaplMeter

def test_rapl_reads_package_and_dram_only(fake_rapl):
    root, package, dram = fake_rapl
    with RaplMeter(str(root)) as meter:
        assert [d.device for d in meter.devices()] == ["cpu-package-0", "cpu-dram-0"]
        start = meter.read()
        package.write_text("4000000\n")  # +3 J
        dram.write_text("2500000\n")  # +0.5 J
        end = meter.read()
    assert meter.delta_j(start, end) == {"cpu-package-0": 3.0, "cpu-dram-0": 0.5}


def test_rapl_counter_wrap_around(tmp_path, rapl_zone):

    root = tmp_path / "powercap"
    energy = rapl_zone(root, "package-0", "intel-rapl:0", 9_000_000, max_uj=10_000_000)
    with RaplMeter(str(root)) as meter:
        start = meter.read()
        energy.write_text("500000\n")  # wrapped: 1 J to the top, then 0.5 J
        middle = meter.read()
        energy.write_text("9500000\n")  # no wrap: +9 J
        end = meter.read()
    assert meter.delta_j(start, middle)["cpu-package-0"] == pytest.approx(1.5)
    assert meter.delta_j(start, end)["cpu-package-0"] == pytest.approx(10.5)


def test_rapl_counter_reset_is_an_error_not_a_wrap(tmp_path, rapl_zone):
    """A counter that steps backwards far from max_energy_range_uj was reset: reading it as a wrap would
    report ~62 kJ in milliseconds. The window fails; the next one is measured again."""
    root = tmp_path / "powercap"
    energy = rapl_zone(root, "package-0", "intel-rapl:0", 200_000_000_000)  # max 262,143 J
    with RaplMeter(str(root)) as meter:
        start = meter.read()
        energy.write_text("1000000\n")  # reset: back to 1 J
        with pytest.raises(MeasurementError, match="stepped backwards.*reset"):
            meter.read()
        energy.write_text("3000000\n")  # +2 J after the reset
        after = meter.read()
        energy.write_text("4000000\n")
        assert meter.delta_j(after, meter.read())["cpu-package-0"] == pytest.approx(1.0)
    assert start.energy_j["cpu-package-0"] == pytest.approx(0.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_rapl_without_permission_says_why(tmp_path, rapl_zone):

    rapl_zone(tmp_path / "pc", "package-0", "intel-rapl:0", 1, readable=False)
    with pytest.raises(MeterUnavailable, match="readable only by root"):
        RaplMeter(str(tmp_path / "pc"))


def test_rapl_permission_error_message(tmp_path, monkeypatch, rapl_zone):
    # Runs as root too: simulate the kernel refusing the read.

    rapl_zone(tmp_path / "pc", "package-0", "intel-rapl:0", 1)
    import builtins

    real_open = builtins.open

    def deny(path, *a, **k):
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(MeterUnavailable, match=r"readable only by root.*--energy-meter estimate"):
        RaplMeter(str(tmp_path / "pc"))


def test_rapl_missing_tree_says_why(tmp_path):
    with pytest.raises(MeterUnavailable, match="does not exist"):
        RaplMeter(str(tmp_path / "nothing"))


def test_rapl_file_vanishing_mid_window_is_an_error(fake_rapl):
    root, package, _ = fake_rapl
    with RaplMeter(str(root)) as meter:
        package.unlink()
        with pytest.raises(MeasurementError, match="cannot read"):
            meter.read()


# -- estimate and selection -------------------------------------------------------------------
