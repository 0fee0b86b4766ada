/* Catalog pages: map previews (vendored Leaflet, offline by default), table paging, facets on phones.
   Data comes from <script type="application/json"> elements and data-* attributes, never inline code. */
(function () {
  "use strict";

  var STYLE = { color: "#0b5cad", weight: 2, opacity: 0.9, fillColor: "#0b5cad", fillOpacity: 0.25 };

  function readConfig(element) {
    var source = document.getElementById(element.getAttribute("data-map-config"));
    return source ? JSON.parse(source.textContent) : null;
  }

  function popupFor(feature) {
    // Built with textContent: property values are data from files and must never become HTML.
    var box = document.createElement("dl");
    box.className = "map-popup";
    var properties = feature.properties || {};
    Object.keys(properties).slice(0, 8).forEach(function (key) {
      var value = properties[key];
      if (value === null || value === undefined || value === "") return;
      var term = document.createElement("dt");
      term.textContent = key;
      var detail = document.createElement("dd");
      detail.textContent = String(value).slice(0, 200);
      box.appendChild(term);
      box.appendChild(detail);
    });
    return box;
  }

  function showStatus(element, message) {
    var status = element.parentNode.querySelector(".map-status");
    if (status) {
      status.textContent = message;
      status.hidden = false;
    }
  }

  function initMap(element) {
    var config = readConfig(element);
    if (!config || !window.L || !config.bbox) return;
    var L = window.L;
    var map = L.map(element, { scrollWheelZoom: false, zoomSnap: 0.25 });
    // A plain prefix: Leaflet's default one links to its web site, and pages link only home.
    map.attributionControl.setPrefix("Leaflet");
    if (config.tiles) {
      L.tileLayer(config.tiles, { attribution: config.attribution, maxZoom: 18, maxNativeZoom: 18 }).addTo(map);
    }
    var b = config.bbox;
    var bounds = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
    map.fitBounds(bounds, { padding: [12, 12] });
    L.rectangle(bounds, { color: "#57606a", weight: 1, dashArray: "4 4", fill: false, interactive: false, className: "map-bbox" }).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    if (!config.geojson) {
      element.setAttribute("data-state", "bbox");
      return;
    }
    element.setAttribute("data-state", "loading");
    fetch(config.geojson, { credentials: "same-origin", headers: { Accept: "application/geo+json, application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var features = (data.features || []).slice(0, config.limit);
        var layer = L.geoJSON({ type: "FeatureCollection", features: features }, {
          style: function () { return Object.assign({ className: "map-feature" }, STYLE); },
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, Object.assign({ radius: 5, className: "map-feature" }, STYLE));
          },
          onEachFeature: function (feature, drawn) { drawn.bindPopup(function () { return popupFor(feature); }); }
        }).addTo(map);
        element.setAttribute("data-state", "drawn");
        element.setAttribute("data-drawn", String(features.length));
        if (features.length && layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [12, 12], maxZoom: 17 });
      })
      .catch(function () {
        element.setAttribute("data-state", "error");
        showStatus(element, element.getAttribute("data-error") || "");
      });
  }

  function pageTable(event) {
    var link = event.target.closest && event.target.closest("a[data-partial]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var section = link.closest(".preview");
    if (!section || !window.fetch) return;
    event.preventDefault();
    fetch(link.getAttribute("data-partial"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        // The fragment is rendered (and escaped) by the portal's own templates.
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector(".preview");
        if (!fresh) throw new Error("no preview in the response");
        section.replaceWith(fresh);
        if (window.history && window.history.replaceState) window.history.replaceState(null, "", link.href);
        fresh.scrollIntoView({ block: "start" });
      })
      .catch(function () { window.location.href = link.href; });
  }

  function collapseFacetsOnPhones() {
    if (window.matchMedia && window.matchMedia("(max-width: 48rem)").matches) {
      document.querySelectorAll("details.facets-panel").forEach(function (panel) {
        if (!panel.querySelector(".selected")) panel.open = false;
      });
    }
  }

  function start() {
    document.querySelectorAll("[data-map-config]").forEach(initMap);
    document.addEventListener("click", pageTable);
    collapseFacetsOnPhones();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
