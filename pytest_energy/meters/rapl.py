"""CPU package and DRAM energy from Linux powercap (Intel RAPL; AMD exposes the same tree).

Each domain's `energy_uj` counter wraps at `max_energy_range_uj`. We fold every raw read into a
cumulative count of our own, and a background thread reads at least every `guard_interval_s`, so a
window spanning several wrap periods still adds up (at 200 W a 262 kJ range wraps every ~22 min).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from ..errors import MeasurementError, MeterUnavailable
from ..records import Method
from .base import DeviceInfo, Meter, Reading

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
# Only package and DRAM: core/uncore are already inside package and would be counted twice.
_KEEP_SUBDOMAINS = {"dram"}
# No CPU package or DRAM domain draws more than this; a backward step whose "wrap" reading would need
# more is a counter reset (driver reload, firmware), not a wrap. Generous: server packages stay < 500 W.
MAX_PLAUSIBLE_DOMAIN_W = 2000.0


@dataclass
class _Domain:
    device: str  # "cpu-package-0", "cpu-dram-0"
    name: str
    path: str  # .../energy_uj
    max_uj: int
    last_raw_uj: int = 0
    total_uj: int = 0
    last_t_s: float = 0.0


class RaplMeter(Meter):
    name = "rapl"
    min_window_s = 0.001  # RAPL updates about every 1 ms

    def __init__(self, root: str = DEFAULT_POWERCAP_ROOT, guard_interval_s: float = 30.0) -> None:
        self.root = root
        self._domains = _discover(root)
        self._lock = threading.Lock()
        for d in self._domains:
            d.last_raw_uj, d.last_t_s = self._raw(d, unavailable=True), time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guard, args=(guard_interval_s,),
                                        name="pytest-energy-rapl-guard", daemon=True)
        self._thread.start()

    @staticmethod
    def _raw(d: _Domain, unavailable: bool = False) -> int:
        try:
            with open(d.path, encoding="ascii") as f:
                return int(f.read().strip())
        except PermissionError as exc:
            raise MeterUnavailable(
                f"RAPL: {d.path} is readable only by root on this kernel (restricted since Linux 5.10, "
                "CVE-2020-8694); grant read access (e.g. `sudo chmod a+r "
                f"{os.path.dirname(d.path)}/energy_uj`) or choose --energy-meter estimate") from exc
        except (OSError, ValueError) as exc:
            cls = MeterUnavailable if unavailable else MeasurementError
            raise cls(f"RAPL: cannot read {d.path}: {exc}") from exc

    def _advance(self) -> None:
        """Fold the counters' progress since the last read into the totals. Caller holds the lock.

        A counter that stepped backwards either wrapped (at max_energy_range_uj; the guard thread makes
        more than one wrap between reads impossible) or was reset. They are told apart by the energy a
        wrap implies: more than MAX_PLAUSIBLE_DOMAIN_W over the elapsed time cannot be a wrap.
        """
        now = time.perf_counter()
        for d in self._domains:
            raw = self._raw(d)
            delta = raw - d.last_raw_uj
            if delta < 0:
                delta += d.max_uj
                elapsed_s = max(now - d.last_t_s, 0.01)  # the kernel updates RAPL about every 1 ms
                if delta / 1e6 > MAX_PLAUSIBLE_DOMAIN_W * elapsed_s:
                    previous = d.last_raw_uj
                    d.last_raw_uj, d.last_t_s = raw, now  # re-anchor, so later windows are measured again
                    raise MeasurementError(
                        f"RAPL: {d.path} stepped backwards (from {previous} to {raw} uJ) "
                        f"{elapsed_s * 1e3:.0f} ms after the previous read; a wrap would mean "
                        f"{delta / 1e6:.0f} J in that time (> {MAX_PLAUSIBLE_DOMAIN_W:g} W), so the counter was "
                        "reset (driver reload or firmware): the energy of this window is unknown")
            d.total_uj += delta
            d.last_raw_uj, d.last_t_s = raw, now

    def _guard(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                with self._lock:
                    self._advance()
            except Exception:  # the next read() re-raises the same failure where the user sees it
                return

    def read(self) -> Reading:
        with self._lock:
            self._advance()
            return Reading(time.perf_counter(), {d.device: d.total_uj / 1e6 for d in self._domains})

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(d.device, d.name, Method.RAPL) for d in self._domains]

    def fingerprint(self) -> dict[str, object]:
        return {"rapl_domains": [d.device for d in self._domains]}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _discover(root: str) -> list[_Domain]:
    if not os.path.isdir(root):
        raise MeterUnavailable(
            f"RAPL: {root} does not exist (not Linux, a CPU without RAPL, or a VM/container that "
            "does not expose powercap)")
    domains = []
    for entry in sorted(os.listdir(root)):
        parts = entry.split(":")
        # "intel-rapl:0" is a package; "intel-rapl:0:1" a subdomain of it. Skip "intel-rapl" (the
        # control type) and the mmio mirror, which would double-count the package.
        if len(parts) not in (2, 3) or not parts[0].endswith("-rapl") or "mmio" in parts[0]:
            continue
        zone = os.path.join(root, entry)
        name = _read_text(os.path.join(zone, "name"))
        if name is None:
            continue
        if len(parts) == 2:
            if not name.startswith("package"):
                continue  # e.g. "psys" overlaps package + dram
            device = f"cpu-package-{parts[1]}"
        else:
            if name not in _KEEP_SUBDOMAINS:
                continue
            device = f"cpu-{name}-{parts[1]}"
        max_text = _read_text(os.path.join(zone, "max_energy_range_uj"))
        try:
            max_uj = int(max_text) if max_text is not None else 0
        except ValueError:
            max_uj = 0
        if max_uj <= 0:
            raise MeterUnavailable(f"RAPL: {zone}/max_energy_range_uj is missing or invalid, "
                                   "so counter wrap-around cannot be handled")
        domains.append(_Domain(device, name, os.path.join(zone, "energy_uj"), max_uj))
    if not domains:
        raise MeterUnavailable(f"RAPL: no package domain found under {root}")
    return domains


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None
