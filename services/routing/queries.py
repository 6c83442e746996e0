"""What routing's API reads: the map in force, its catalog, and a preview of a posted map.

The API reads through here and never reaches into the consumer or the adapters itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.adapters.mapfile import parse_map_text
from routing.domain.catalog import Catalog
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Versioned, next_map
from routing.handlers import MapState
from shared.contracts import ProcessMapV1, holidays_data_version


@dataclass(frozen=True)
class Preview:
    """A posted map, checked, with the versions its standards would get."""

    draft: ProcessMapDraft
    versioned: Versioned
    compared_with: ProcessMapV1 | None


class MapQueries:
    """Read access to the process map this instance applies."""

    def __init__(self, state: MapState) -> None:
        self._state = state

    @property
    def current(self) -> ProcessMapV1 | None:
        """The map in force (None until it is versioned and published)."""
        return self._state.current

    @property
    def catalog(self) -> Catalog | None:
        """The catalog of the map in force (None until then)."""
        return self._state.catalog

    def preview(self, text: str, now: datetime) -> Preview:
        """Check a map given as YAML text against the one in force; raises InvalidProcessMap
        listing every error."""
        draft = parse_map_text(text)
        current = self._state.current
        return Preview(
            draft,
            next_map(
                draft,
                current,
                now=now,
                source="validate",
                holidays_version=holidays_data_version(),
            ),
            current,
        )
