"""Default map styles for layers: a colour and symbol, optionally classified by an attribute."""

from typing import Any

from portal.geo.registry import LayerSummary

# 用途地域 (zoning): the colours Japanese urban planning maps conventionally use, by A29_004 code.
ZONING_COLOURS = {
    "1": "#00a051",
    "2": "#8fd19e",
    "3": "#7cc242",
    "4": "#c6e29a",
    "5": "#fff100",
    "6": "#fcd8a1",
    "7": "#f6ad3c",
    "8": "#f7b6c8",
    "9": "#e60033",
    "10": "#b28cc2",
    "11": "#8ecae6",
    "12": "#0068b7",
    "21": "#c8a96e",
}
PALETTE = ("#1f6fb2", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#3d5a80", "#8a5a44")
SYMBOLS = {"Point": "circle", "LineString": "line", "Polygon": "fill"}


def layer_style(layer: LayerSummary) -> dict[str, Any] | None:
    """Return the layer's style: its stored one, else a default by geometry and attributes."""
    if layer.style:
        return layer.style
    if not layer.is_spatial:
        return None
    kind = (layer.geometry_type or "").removeprefix("Multi")
    style: dict[str, Any] = {
        "symbol": SYMBOLS.get(kind, "circle"),
        "color": PALETTE[sum(map(ord, layer.id)) % len(PALETTE)],
        "weight": 3 if kind == "LineString" else 1,
        "opacity": 0.9,
        "fillOpacity": 0.45 if kind == "Polygon" else 0.8,
    }
    if "A29_004" in layer.column_names:
        style["classify"] = {"property": "A29_004", "colors": ZONING_COLOURS}
    return style
