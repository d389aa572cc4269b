"""Offline maps: the vendored Leaflet files written inline in place of their CDN links.

folium loads Leaflet and its plugins from CDNs; :class:`OfflineAssets` swaps those links
for inline copies of the files vendored under :data:`STATIC_DIR` (``gridkit/static``,
see its README) and leaves out folium defaults gridkit's layers do not need, so a saved
map opens on a computer with no internet access.
"""

from __future__ import annotations

import base64
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from branca.element import CssLink, Element, JavascriptLink

from gridkit.errors import GridkitWarning, format_ids
from gridkit.maps._branca import children

__all__ = ["STATIC_DIR", "OfflineAssets"]


#: Folder of the vendored JavaScript / CSS used by offline maps (see its README.md).
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# (pattern on the URL, kind, file under STATIC_DIR); first match wins
_MC = "leaflet.markercluster/"

_ASSETS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"leaflet\.markercluster(-src)?\.js$"), "js", _MC + "leaflet.markercluster.js"),
    (re.compile(r"MarkerCluster\.Default\.css$"), "css", _MC + "MarkerCluster.Default.css"),
    (re.compile(r"MarkerCluster\.css$"), "css", _MC + "MarkerCluster.css"),
    (re.compile(r"/leaflet(-src)?\.js$"), "js", "leaflet/leaflet.js"),
    (re.compile(r"/leaflet\.css$"), "css", "leaflet/leaflet.css"),
    (re.compile(r"/jquery[-.\d]*(\.min)?\.js$"), "js", "jquery/jquery.min.js"),
    (re.compile(r"/leaflet[^/]*/(?:dist/)?images/([\w-]+\.png)$"), "png", ""),
)

# folium defaults that gridkit's layers do not need; left out of offline maps
_DROPPED = re.compile(
    r"bootstrap|glyphicons|fontawesome|font-awesome|awesome-markers|awesome\.rotate", re.I
)

_LEAFLET_ICON_FIX = (
    "L.Icon.Default.imagePath = '';"
    "L.Icon.Default.prototype.options.iconUrl = '{icon}';"
    "L.Icon.Default.prototype.options.iconRetinaUrl = '{icon2x}';"
    "L.Icon.Default.prototype.options.shadowUrl = '{shadow}';"
)


def _local_asset(url: str) -> Path | None:
    """The vendored file that stands in for the CDN ``url``, or ``None``."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    for pattern, kind, rel in _ASSETS:
        match = pattern.search(path)
        if match is None:
            continue
        if kind == "png":
            name = match.group(1)
            candidate = STATIC_DIR / "leaflet" / "images" / name
            return candidate if candidate.is_file() else None
        return STATIC_DIR / rel
    return None


def _is_dropped_asset(url: str) -> bool:
    """Whether ``url`` is a folium default that offline maps leave out."""
    return bool(_DROPPED.search(url))


@cache
def _data_uri(name: str) -> str:
    data = (STATIC_DIR / "leaflet" / "images" / name).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


@cache
def _inline_text(path: Path) -> str:
    """Contents of a vendored file, ready to sit inside ``<script>`` / ``<style>``."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "\n", text)
    if path.suffix == ".css":
        text = re.sub(
            r"url\((['\"]?)images/([\w-]+\.png)\1\)",
            lambda mt: f"url({_data_uri(mt.group(2))})",
            text,
        )
        return text.replace("</style", "<\\/style")
    text = text.replace("</script", "<\\/script")
    if path.name == "leaflet.js":
        text += "\n" + _LEAFLET_ICON_FIX.format(
            icon=_data_uri("marker-icon.png"),
            icon2x=_data_uri("marker-icon-2x.png"),
            shadow=_data_uri("marker-shadow.png"),
        )
    return text


class _InlineAsset(Element):
    """A vendored script or stylesheet written inline into the page header."""

    def __init__(self, path: Path, url: str) -> None:
        super().__init__()
        self._name = "GridkitInlineAsset"
        self.path = path
        self.url = url

    def render(self, **kwargs: Any) -> str:
        tag = "style" if self.path.suffix == ".css" else "script"
        return (
            f"<{tag}>/* {self.path.relative_to(STATIC_DIR)} */\n{_inline_text(self.path)}</{tag}>"
        )


class OfflineAssets(Element):
    """Swap the CDN links of the page header for inline copies of the vendored files.

    Added to the :class:`branca.element.Figure` after the map, so it renders after
    every layer has put its links in the header (layers added to the map after
    :func:`explore` are covered too).
    """

    def __init__(self) -> None:
        super().__init__()
        self._name = "GridkitOfflineAssets"

    def render(self, **kwargs: Any) -> str:
        header = self.get_root().header
        unknown = []
        for key, child in list(children(header).items()):
            if not isinstance(child, (JavascriptLink, CssLink)):
                continue
            asset = _local_asset(child.url)
            if asset is not None:  # the same name: replaced in its place
                header.add_child(_InlineAsset(asset, child.url), name=key)
            elif _is_dropped_asset(child.url):
                del children(header)[key]
            elif re.match(r"(https?:)?//", child.url):
                unknown.append(child.url)
        if unknown:
            warnings.warn(
                f"the offline map still loads {format_ids(unknown)} from the network: "
                "gridkit has no local copy of it; remove the layer that needs it or host "
                "the file yourself.",
                GridkitWarning,
                stacklevel=2,
            )
        return ""
