"""The simulator's deterministic catalogue: sites, equipment and points.

A site is a fixed building plan (air handlers, VAV boxes, chillers, a boiler,
meters, weather) in a real town, whose points carry the names, metadata and
cadences of a real ACE site. Everything derives from (seed, site name, its
place in the list), so a catalogue is rebuilt identically on every start.

When points of one cadence are collected together (`shared_runs`, as the real
API does), every point of that cadence is stamped with the same instant, at a
microsecond phase of the site's; otherwise each point has its own whole-second
phase, so points interleave in time.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PLACES",
    "Kind",
    "Place",
    "PointSpec",
    "SiteSpec",
    "Style",
    "build_site",
    "stable_hash64",
]

#: How a point's value evolves: a noisy analog signal, a monotone counter, an on/off
#: state, or a small set of states.
Kind = Literal["analog", "counter", "binary", "multistate"]

#: How a value is written into JSON: a quoted decimal (`"72.5"`, the common case),
#: a bare JSON number, quoted words (`"active"`), or bare JSON `true`/`false`.
Style = Literal["string", "number", "words", "bool"]


def stable_hash64(*parts: object) -> int:
    """A 64-bit hash of the parts' text that is the same in every process and version."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Model:
    """Signal parameters of one point type (units of the point).

    value = base + daily*cos(day cycle) + drift*(hourly smooth noise)
            + noise*(white noise) + occ*(1 when the building is occupied),
    clipped to [lo, hi] and rounded to `decimals`. A counter (an energy meter)
    is base + rate*hours, its rate modulated by +-`daily` (a share below 1) over
    the day, so it only ever grows. Binary and multistate points use `p_on_occ` /
    `p_on_unocc`: the chance of "on" (or of the first state) in a 15-minute slot.
    """

    kind: Kind = "analog"
    style: Style = "string"
    cadence_s: int = 60
    base: float = 0.0
    daily: float = 0.0
    drift: float = 0.0
    noise: float = 0.0
    occ: float = 0.0
    rate: float = 0.0
    lo: float = -1e12
    hi: float = 1e12
    decimals: int = 1
    p_on_occ: float = 0.9
    p_on_unocc: float = 0.1
    words: tuple[str, ...] = ()
    unit: str = ""
    object_type: str = "analogInput"
    tags: tuple[str, ...] = ("point", "sensor")


@dataclass(frozen=True)
class PointSpec:
    """One configured point: its ACE name and metadata plus its signal model."""

    id: int
    name: str
    equipment: str
    short: str
    ip: str
    device_id: int
    object_index: int
    model: Model
    cadence_s: int
    phase_us: int
    """Microseconds into its cadence at which the point is collected."""
    flaky: bool
    key: int

    @property
    def phase_s(self) -> int:
        """The phase in whole seconds (exact when runs are not shared)."""
        return self.phase_us // 1_000_000

    def to_json(self, site: SiteSpec) -> dict[str, Any]:
        """The point as `/configured_points` returns it (fields of the real API)."""
        m = self.model
        kv_tags = {"equip": self.equipment, "dis": f"{self.equipment} {self.short}"}
        if m.unit:
            kv_tags["unit"] = m.unit
        return {
            "id": self.id,
            "name": self.name,
            "client": site.client,
            "client_id": site.client_id,
            "site": site.name,
            "site_id": site.id,
            "kv_tags": kv_tags,
            "bacnet_data": {
                "device_address": self.ip,
                "device_id": self.device_id,
                "object_type": m.object_type,
                "object_index": self.object_index,
                "object_name": self.short,
                "device_name": self.equipment,
                "object_description": f"{self.equipment} {self.short}",
                "device_description": f"{self.equipment} controller",
                "scrape_interval": self.cadence_s,
                "scrape_enabled": True,
                "present_value": None,
                "additional_properties": None,
            },
            "marker_tags": list(m.tags),
            "collect_config": {},
            "point_type": "bacnet",
            "collect_enabled": True,
            "collect_interval": self.cadence_s,
            "topic_id": None,
            "device_id": None,
            "created": site.created,
            "updated": site.updated,
        }


@dataclass(frozen=True)
class Place:
    """Where a simulated building stands; its UTC offset (standard time) follows from it."""

    key: str
    """A site whose name contains this is put here (`ses_falls_city` in Falls City)."""
    street: str
    town: str
    latitude: float
    longitude: float
    tz_offset_s: int


#: Towns of the simulated sites, in four time zones. A site goes to the place its name
#: names, else to the place of its position in the list of sites.
PLACES: tuple[Place, ...] = (
    Place("falls_city", "Harlan Street", "Falls City, NE 68355", 40.0603, -95.6019, -6 * 3600),
    Place("sacramento", "J Street", "Sacramento, CA 95814", 38.5816, -121.4944, -8 * 3600),
    Place("boston", "Tremont Street", "Boston, MA 02116", 42.3512, -71.0648, -5 * 3600),
    Place("denver", "Colfax Avenue", "Denver, CO 80203", 39.7400, -104.9800, -7 * 3600),
)


def _place(name: str, site_id: int) -> Place:
    for place in PLACES:
        if place.key in name:
            return place
    return PLACES[(site_id - 1) % len(PLACES)]


@dataclass(frozen=True)
class SiteSpec:
    """One site: its metadata and its points in id order."""

    id: int
    name: str
    client: str
    client_id: int
    nice_name: str
    address: str
    latitude: float
    longitude: float
    tz_offset_s: int
    key: int
    created: str
    updated: str
    points: tuple[PointSpec, ...] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The site as `/sites/{site}` returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "nice_name": self.nice_name,
            "address": self.address,
            "vtron_ip": "10.20.0.4",
            "vtron_user": "volttron",
            "ansible_user": None,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "geo_location": f"{self.latitude},{self.longitude}",
            "mqtt_prefix": f"{self.client}/{self.name}",
            "client_id": self.client_id,
            "client": self.client,
            "archived": False,
            "created": self.created,
            "updated": self.updated,
        }


def _pct(**params: Any) -> Model:
    """A percentage (damper, valve, fan speed): clipped to 0..100, an analog output."""
    return Model(lo=0.0, hi=100.0, unit="%", object_type="analogOutput", **params)


_OCC_WORDS = ("Occupied", "Unoccupied", "Standby")

#: Point types per equipment type: short name -> signal model.
_AHU: dict[str, Model] = {
    "SaTemp": Model(base=55, daily=1.5, drift=1.2, noise=0.2, unit="°F", tags=("temp", "air")),
    "RaTemp": Model(base=71, daily=2, drift=0.8, noise=0.1, unit="°F", tags=("temp", "return")),
    "MaTemp": Model(base=62, daily=5, drift=1.5, noise=0.2, unit="°F", tags=("temp", "mixed")),
    "OaTemp": Model(cadence_s=300, base=48, daily=11, drift=4, noise=0.3, unit="°F"),
    "SaTempSp": Model(cadence_s=300, base=55, occ=-1, decimals=0, object_type="analogValue"),
    "SaPress": Model(cadence_s=30, base=1.1, occ=0.3, drift=0.08, noise=0.03, decimals=2),
    "SaPressSp": Model(cadence_s=300, base=1.5, decimals=2, object_type="analogValue"),
    "SupFanSpeed": _pct(cadence_s=30, base=35, occ=30, drift=6, noise=1.5),
    "RetFanSpeed": _pct(cadence_s=30, base=30, occ=25, drift=5, noise=1.5),
    "SupFanStatus": Model(
        kind="binary",
        style="words",
        words=("active", "inactive"),
        p_on_occ=0.99,
        p_on_unocc=0.15,
        decimals=0,
        object_type="binaryInput",
    ),
    "ClgVlv": _pct(base=20, daily=25, occ=15, drift=8, noise=1),
    "HtgVlv": _pct(base=10, daily=-8, drift=5, noise=1),
    "OaDamper": _pct(cadence_s=30, base=15, occ=20, drift=4, noise=0.5),
    "OccMode": Model(
        kind="multistate",
        style="words",
        cadence_s=300,
        words=_OCC_WORDS,
        p_on_occ=0.97,
        p_on_unocc=0.03,
        decimals=0,
        object_type="multiStateValue",
    ),
}
_DAMPERS: dict[str, Model] = {
    name: _pct(base=base, occ=occ, drift=5, noise=0.5)
    for name, base, occ in (
        ("Exhaust_Damper", 20, 25),
        ("OA_Damper", 15, 20),
        ("RA_Damper", 80, -20),
        ("Relief_Damper", 10, 15),
    )
}
_VAV: dict[str, Model] = {
    "DaTemp": Model(base=58, daily=2, drift=2, noise=0.3, unit="°F", tags=("temp", "discharge")),
    "ZnTemp": Model(cadence_s=300, base=71.5, daily=1.2, drift=0.6, noise=0.1, unit="°F"),
    "ZnSp": Model(cadence_s=300, base=76, occ=-4, decimals=1, object_type="analogValue"),
    "Damper": _pct(base=25, occ=30, daily=10, drift=10, noise=2),
    "AirFlow": Model(cadence_s=30, base=180, occ=220, drift=60, noise=12, lo=0, decimals=0),
    "OccStatus": Model(
        kind="binary",
        style="words",
        cadence_s=300,
        words=("true", "false"),
        p_on_occ=0.95,
        p_on_unocc=0.02,
        decimals=0,
        object_type="binaryValue",
    ),
}
_CHILLER: dict[str, Model] = {
    "ChwSupTemp": Model(base=44, drift=0.5, noise=0.1, unit="°F"),
    "ChwRetTemp": Model(base=53, daily=2, drift=0.8, noise=0.1, unit="°F"),
    "CondSupTemp": Model(base=84, daily=3, drift=1, noise=0.2, unit="°F"),
    "CondRetTemp": Model(base=93, daily=3, drift=1, noise=0.2, unit="°F"),
    "kW": Model(cadence_s=30, base=120, daily=60, occ=40, drift=15, noise=3, lo=0, unit="kW"),
    "PctLoad": _pct(cadence_s=30, base=45, daily=25, occ=10, drift=6, noise=1),
    "Status": Model(
        kind="binary",
        style="bool",
        p_on_occ=0.98,
        p_on_unocc=0.3,
        decimals=0,
        object_type="binaryInput",
    ),
    "Mode": Model(
        kind="multistate",
        cadence_s=300,
        p_on_occ=0.9,
        p_on_unocc=0.1,
        decimals=0,
        object_type="multiStateValue",
    ),
    "Alarm": Model(
        kind="binary",
        style="words",
        words=("active", "inactive"),
        p_on_occ=0.02,
        p_on_unocc=0.02,
        decimals=0,
        object_type="binaryInput",
    ),
}
_BOILER: dict[str, Model] = {
    "HwSupTemp": Model(base=160, daily=-6, drift=2, noise=0.4, unit="°F"),
    "HwRetTemp": Model(base=141, daily=-5, drift=2, noise=0.4, unit="°F"),
    "FiringRate": _pct(cadence_s=30, base=40, daily=-20, drift=8, noise=2),
    "Enable": Model(
        kind="binary",
        style="words",
        words=("on", "off"),
        cadence_s=300,
        p_on_occ=0.9,
        p_on_unocc=0.6,
        decimals=0,
        object_type="binaryOutput",
    ),
}


def _meter(scale: float) -> dict[str, Model]:
    return {
        "kW": Model(
            cadence_s=30,
            base=scale,
            daily=scale / 3,
            occ=scale / 2,
            drift=scale / 10,
            noise=scale / 50,
            lo=0,
            decimals=2,
            unit="kW",
        ),
        "kWh": Model(
            kind="counter",
            style="number",
            cadence_s=300,
            base=scale * 9000,
            daily=0.5,
            rate=scale,
            decimals=2,
            unit="kWh",
        ),
        "Voltage": Model(base=480, drift=3, noise=0.8, decimals=1, unit="V"),
        "Current": Model(
            cadence_s=30,
            base=scale * 1.2,
            daily=scale / 3,
            occ=scale / 2,
            drift=scale / 10,
            noise=scale / 40,
            lo=0,
            unit="A",
        ),
        "PowerFactor": Model(base=0.91, drift=0.02, noise=0.005, lo=0, hi=1, decimals=3),
        "kVAR": Model(
            cadence_s=30,
            base=scale / 4,
            daily=scale / 12,
            drift=scale / 30,
            noise=scale / 100,
            decimals=2,
            unit="kVAR",
        ),
    }


_WEATHER: dict[str, Model] = {
    "OutdoorTemp": Model(cadence_s=300, base=48, daily=11, drift=4, noise=0.2, unit="°F"),
    "OutdoorHumidity": Model(
        cadence_s=300, base=62, daily=-15, drift=8, noise=1, lo=5, hi=100, decimals=0, unit="%RH"
    ),
    "WindSpeed": Model(cadence_s=300, base=9, daily=3, drift=4, noise=1.5, lo=0, unit="mph"),
}


def _equipment(vav_count: int) -> list[tuple[str, str, dict[str, Model]]]:
    """(equipment name, controller IP, point models) of one building, in point-id order."""
    plan: list[tuple[str, str, dict[str, Model]]] = []
    plan += [(f"AHU-{i}", "192.168.96.3", _AHU) for i in range(1, 5)]
    plan.append(("AHUDampers", "192.168.96.3", _DAMPERS))
    for i in range(vav_count):
        floor, box = 7 + i // 12, i % 12 + 1
        controller = 10 + i // 12
        ip = f"192.168.{96 + controller // 250}.{controller % 250}"
        plan.append((f"VAV-{floor}{box:02d}", ip, _VAV))
    plan += [(f"Chiller-{i}", "192.168.96.20", _CHILLER) for i in (1, 2)]
    plan.append(("Boiler-1", "192.168.96.21", _BOILER))
    for meter, scale in (("Main_Meter", 400.0), ("Chiller_Meter", 180.0), ("Lighting_Meter", 60.0)):
        plan.append((meter, "192.168.96.30", _meter(scale)))
    plan.append(("Weather", "192.168.96.1", _WEATHER))
    return plan


def _run_phases(site_key: int, cadences: set[int]) -> dict[int, int]:
    """Microseconds into its cadence of each collection run of a site, one per cadence.

    Never on a whole millisecond (so times always carry a fraction), and apart
    from each other's millisecond modulo the cadences' common divisor, so two
    runs never share a millisecond: (time, point) order is the same at ms and
    at µs resolution.
    """
    common_ms = math.gcd(*(c * 1000 for c in cadences)) if cadences else 1
    taken: set[int] = set()
    phases: dict[int, int] = {}
    for cadence in sorted(cadences):
        h = stable_hash64("run", site_key, cadence)
        span = cadence * 1_000_000
        us = h % span
        us += 1 + (h >> 40) % 999 - us % 1000
        while (us // 1000) % common_ms in taken:
            us = (us + 1000) % span
        taken.add((us // 1000) % common_ms)
        phases[cadence] = us
    return phases


def build_site(
    name: str,
    site_id: int,
    seed: int,
    vav_count: int = 36,
    *,
    shared_runs: bool = False,
    cadence_s: int | None = None,
) -> SiteSpec:
    """The catalogue of one site: identical for the same arguments.

    Cadences come from the point type, with about one point in eight collected at
    another of 30/60/300 s (or all at `cadence_s` when given). With `shared_runs`
    the points of one cadence share the site's run phase; without, each point gets
    its own whole-second phase within its cadence. About 3 % of analog points are
    flaky and now and then report null or an empty string.
    """
    client = name.split("_", 1)[0] or name
    site_key = stable_hash64("site", seed, name)
    place = _place(name, site_id)
    plan: list[tuple[str, int, str, str, int, str, Model, int, int]] = []
    for device, (equipment, ip, models) in enumerate(_equipment(vav_count)):
        for index, (short, model) in enumerate(models.items()):
            folder = f"{client}/{name}/{ip}/n4/Drivers/BacnetNetwork/{equipment}"
            pname = f"{folder}/{equipment}.points.{short}"
            key = stable_hash64("point", seed, name, pname)
            cadence = model.cadence_s
            if key % 8 == 0:
                cadence = (30, 60, 300)[(key >> 8) % 3]
            if cadence_s is not None:
                cadence = cadence_s
            plan.append((pname, device, equipment, ip, index, short, model, cadence, key))
    runs = _run_phases(site_key, {p[7] for p in plan}) if shared_runs else {}
    points = tuple(
        PointSpec(
            id=site_id * 100_000 + i + 1,
            name=pname,
            equipment=equipment,
            short=short,
            ip=ip,
            device_id=site_id * 1000 + device + 1,
            object_index=index + 1,
            model=model,
            cadence_s=cadence,
            phase_us=runs[cadence] if shared_runs else (key >> 16) % cadence * 1_000_000,
            flaky=model.kind == "analog" and (key >> 32) % 100 < 3,
            key=key,
        )
        for i, (pname, device, equipment, ip, index, short, model, cadence, key) in enumerate(plan)
    )
    return SiteSpec(
        id=site_id,
        name=name,
        client=client,
        client_id=site_id // 10 + 1,
        nice_name=name.replace("_", " ").title(),
        address=f"{100 + site_key % 900} {place.street}, {place.town}",
        latitude=place.latitude,
        longitude=place.longitude,
        tz_offset_s=place.tz_offset_s,
        key=site_key,
        created="2023-03-14T15:09:26Z",
        updated="2024-06-02T08:41:10Z",
        points=points,
    )
