/*
 * Benchmark baseline: the FastAPI prototype's way of drawing, reproduced.
 * Every event adds a new two-point polyline from the entity's previous
 * position to the new one, and moves the entity's marker; nothing is ever
 * removed.  Same Leaflet, same canvas renderer, same colours and the same
 * JSON parsing as html/geostream.js, so that only the layer strategy
 * differs.  window.prototypeMap.ingest(topic, id, text) is the message
 * handler.
 */
(function () {
  'use strict';

  var map = L.map('map', { preferCanvas: true }).setView([52.52, 13.405], 12);
  var last = new Map();    /* name -> {latlng, head} */
  var layers = 0;

  function colourFor(name) {
    var h = 0x811c9dc5;
    for (var i = 0; i < name.length; i++) {
      h ^= name.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return 'hsl(' + ((h >>> 0) % 360) + ', 70%, 40%)';
  }

  function ingest(topic, id, text) {
    var msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      return false;
    }
    var latlng = L.latLng(msg.lat, msg.lon);
    var prev = last.get(msg.name);
    if (!prev) {
      var head = L.circleMarker(latlng, { radius: 5, color: '#fff', weight: 2,
        fillColor: colourFor(msg.name), fillOpacity: 1 }).addTo(map);
      last.set(msg.name, { latlng: latlng, head: head });
      layers++;
      return true;
    }
    L.polyline([prev.latlng, latlng], { color: colourFor(msg.name), weight: 3,
      opacity: 0.85, interactive: false }).addTo(map);
    layers++;
    prev.head.setLatLng(latlng);
    prev.latlng = latlng;
    return true;
  }

  window.prototypeMap = {
    ingest: ingest,
    map: map,
    get layers() { return layers; }
  };
}());
