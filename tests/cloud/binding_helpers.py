"""Binding desks and rooms to a node the only way the cloud knows them: a layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.buildings.layout import apply_layout, parse_layout


async def bind(
    engine: AsyncEngine,
    node: str,
    desks: Sequence[str] = (),
    rooms: Sequence[str] = (),
    sensors: Mapping[str, str] | None = None,
) -> None:
    """Applies a one-floor layout whose desks and rooms are served by `node`.

    `sensors` names the sensor of some of the rooms (room -> sensor id).
    """
    sensors = sensors or {}
    await apply_layout(
        engine,
        parse_layout(
            {
                "site": {"id": "bindings-site", "name": "Bindings test site"},
                "buildings": [
                    {
                        "id": f"b-{node}",
                        "name": node,
                        "floors": [
                            {
                                "id": f"f-{node}",
                                "level": 1,
                                "name": node,
                                "node": node,
                                "zones": [
                                    {
                                        "id": f"z-{node}",
                                        "name": node,
                                        "desks": [{"id": d} for d in desks],
                                        "rooms": [
                                            {
                                                "id": r,
                                                "name": r,
                                                "capacity": 2,
                                                "sensor": sensors.get(r),
                                            }
                                            for r in rooms
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ),
    )
