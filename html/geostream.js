/*
 * geostream live map.
 *
 * Subscribes to the module's Server-Sent-Events stream at /consumer/<topic>
 * and draws one trail (polyline) plus one head marker per entity on a
 * Leaflet map.  Plain script, no framework, no build step: nginx serves this
 * directory as-is and Leaflet from /leaflet/ (node_modules/leaflet/dist).
 *
 * Page arguments:  ?topic=NAME  (default "geostream")
 *                  ?trail=N     (points kept per entity, default 500)
 * Data attributes on #map override the constants below:
 *   data-tile-url, data-tile-attribution ("none" or "" as the URL: no tiles),
 *   data-trail-cap, data-topic.
 *
 * Everything that comes from the stream (names, ids, values) is rendered as
 * text (textContent), never as HTML.
 *
 * Read-only test hook: window.geostream (see exposeHook below).
 */
(function () {
  'use strict';

  /* ---- configuration ------------------------------------------------- */

  var TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
  var TILE_ATTRIBUTION =
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';
  var TILE_MAX_ZOOM = 19;

  var DEFAULT_TOPIC = 'geostream';
  var CONSUMER_PATH = '/consumer/';
  var TRAIL_CAP = 500;           /* points kept per entity */
  var FIT_EVENTS = 20;           /* fit the view to the data during the first */
  var FIT_MS = 3000;             /* N points and the first T ms of data */
  var FIT_MAX_ZOOM = 16;
  var LABEL_LIMIT = 50;          /* permanent name labels for the first N entities */
  var HEAD_RADIUS = 5;
  var TRAIL_WEIGHT = 3;
  var RECONNECT_MIN_MS = 1000;   /* when the browser gives up (non-200 answer) */
  var RECONNECT_MAX_MS = 30000;
  var INITIAL_VIEW = { lat: 52.52, lon: 13.405, zoom: 12 };

  /* ---- state ---------------------------------------------------------- */

  var state = {
    topic: DEFAULT_TOPIC,
    trailCap: TRAIL_CAP,
    map: null,
    entities: new Map(),         /* name -> entity (see createEntity) */
    status: 'connecting',
    source: null,
    reconnectMs: RECONNECT_MIN_MS,
    reconnectTimer: null,
    events: 0,
    ignored: 0,
    fitted: 0,
    firstDataAt: 0,
    userMoved: false,
    fitPending: false,
    hudPending: false,
    tileErrors: 0,
    tileLoads: 0
  };

  var ui = {};

  /* ---- small helpers -------------------------------------------------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function positiveInt(value, fallback) {
    var n = parseInt(value, 10);
    return (isFinite(n) && n > 0) ? n : fallback;
  }

  /* FNV-1a 32-bit with a final avalanche (murmur3 fmix32): a stable,
   * well mixed hash of the entity name. */
  function hashString(s) {
    var h = 0x811c9dc5;
    for (var i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /* Stable colour per name: the high hash bits pick the hue anywhere on
   * the wheel, the low bits vary saturation and lightness a little so that
   * neighbouring hues still differ.  Lightness stays low enough to read on
   * light tiles and on the plain background. */
  function colourFor(name) {
    var h = hashString(name);
    var hue = Math.floor(h / 4294967296 * 360);
    var sat = 65 + (h & 3) * 7;               /* 65..86 % */
    var light = 36 + ((h >>> 2) % 3) * 5;     /* 36..46 % */
    return 'hsl(' + hue + ', ' + sat + '%, ' + light + '%)';
  }

  function formatCoord(v) {
    return Number(v).toFixed(5);
  }

  /* ---- configuration from the page ------------------------------------ */

  function readConfig(container) {
    var params = new URLSearchParams(window.location.search);
    var data = container.dataset;

    var topic = params.get('topic') || data.topic || DEFAULT_TOPIC;
    var tileUrl = (data.tileUrl !== undefined) ? data.tileUrl : TILE_URL;
    if (tileUrl === 'none') tileUrl = '';

    return {
      topic: topic,
      trailCap: positiveInt(params.get('trail'),
                            positiveInt(data.trailCap, TRAIL_CAP)),
      tileUrl: tileUrl,
      tileAttribution: (data.tileAttribution !== undefined)
        ? data.tileAttribution : TILE_ATTRIBUTION
    };
  }

  /* ---- map ------------------------------------------------------------ */

  function createMap(container) {
    var map = L.map(container, {
      preferCanvas: true,
      worldCopyJump: true
    }).setView([INITIAL_VIEW.lat, INITIAL_VIEW.lon], INITIAL_VIEW.zoom);

    /* Once the user pans or zooms, stop fitting the view to the data. */
    ['mousedown', 'wheel', 'touchstart', 'keydown', 'dblclick'].forEach(function (type) {
      container.addEventListener(type, function () { state.userMoved = true; },
                                 { passive: true });
    });
    return map;
  }

  function addTiles(map, config) {
    if (!config.tileUrl) {
      showTileNote('No map tiles configured: showing trails only.');
      return null;
    }
    var layer = L.tileLayer(config.tileUrl, {
      maxZoom: TILE_MAX_ZOOM,
      attribution: config.tileAttribution
    });
    layer.on('tileerror', function () {
      state.tileErrors++;
      if (state.tileLoads === 0) {
        showTileNote('Map tiles unavailable (offline?): showing trails only.');
      }
    });
    layer.on('tileload', function () {
      state.tileLoads++;
      hideTileNote();
    });
    layer.addTo(map);
    return layer;
  }

  function showTileNote(text) {
    ui.tileNote.textContent = text;
    ui.tileNote.hidden = false;
  }

  function hideTileNote() {
    ui.tileNote.hidden = true;
  }

  /* Fit to all data for the first few points and seconds, then leave the
   * view alone; also stop as soon as the user pans or zooms. */
  function fitting() {
    if (state.userMoved) return false;
    if (!state.firstDataAt) state.firstDataAt = Date.now();
    return state.fitted < FIT_EVENTS || Date.now() - state.firstDataAt < FIT_MS;
  }

  function scheduleFit() {
    if (state.fitPending) return;
    state.fitPending = true;
    window.requestAnimationFrame(function () {
      state.fitPending = false;
      if (!state.userMoved) fitToData();
    });
  }

  function fitToData() {
    var bounds = L.latLngBounds([]);
    state.entities.forEach(function (entity) {
      entity.line.getLatLngs().forEach(function (ll) { bounds.extend(ll); });
    });
    if (!bounds.isValid()) return;
    if (bounds.getNorthEast().equals(bounds.getSouthWest())) {
      state.map.setView(bounds.getCenter(), FIT_MAX_ZOOM - 1, { animate: false });
    } else {
      /* Some room around the data: entities keep moving after the fit. */
      state.map.fitBounds(bounds.pad(0.1), { padding: [30, 30], maxZoom: FIT_MAX_ZOOM,
                                              animate: false });
    }
  }

  /* ---- entities ------------------------------------------------------- */

  function labelElement(name) {
    return el('span', 'gs-label', name);
  }

  function detailsElement(entity) {
    var box = el('div', 'gs-details');
    var title = el('div', 'gs-details-name', entity.name);
    title.style.borderLeftColor = entity.colour;
    box.appendChild(title);

    var rows = [
      ['message', entity.messageId],
      ['lat', formatCoord(entity.last.lat)],
      ['lon', formatCoord(entity.last.lng)],
      ['points', entity.line.getLatLngs().length],
      ['updates', entity.updates],
      ['seen', new Date(entity.seen).toLocaleTimeString()]
    ];
    var table = el('table');
    rows.forEach(function (row) {
      var tr = el('tr');
      tr.appendChild(el('th', null, row[0]));
      tr.appendChild(el('td', null, row[1]));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }

  function createEntity(name, latlng) {
    var colour = colourFor(name);
    var line = L.polyline([], {
      color: colour,
      weight: TRAIL_WEIGHT,
      opacity: 0.85,
      interactive: false
    }).addTo(state.map);
    var head = L.circleMarker(latlng, {
      radius: HEAD_RADIUS,
      color: '#ffffff',
      weight: 2,
      fillColor: colour,
      fillOpacity: 1
    }).addTo(state.map);

    var entity = {
      name: name,
      colour: colour,
      line: line,
      head: head,
      last: latlng,
      messageId: '',
      updates: 0,
      seen: Date.now()
    };

    head.bindTooltip(labelElement(name), {
      permanent: state.entities.size < LABEL_LIMIT,
      direction: 'right',
      offset: [HEAD_RADIUS + 2, 0],
      className: 'gs-tooltip'
    });
    head.bindPopup(function () { return detailsElement(entity); });
    state.entities.set(name, entity);
    return entity;
  }

  function trimTrail(entity) {
    var latlngs = entity.line.getLatLngs();
    var excess = latlngs.length - state.trailCap;
    if (excess > 0) {
      latlngs.splice(0, excess);
      entity.line.setLatLngs(latlngs);  /* same layer; recomputes bounds */
    }
  }

  function updateEntity(msg) {
    var latlng = L.latLng(msg.lat, msg.lon);
    var entity = state.entities.get(msg.name);
    if (!entity) {
      entity = createEntity(msg.name, latlng);
    } else if (entity.messageId === msg.messageId && entity.last.equals(latlng, 0)) {
      return false;                   /* exact repeat (e.g. after a reconnect) */
    }

    entity.line.addLatLng(latlng);
    trimTrail(entity);
    entity.head.setLatLng(latlng);
    entity.last = latlng;
    entity.messageId = msg.messageId;
    entity.updates++;
    entity.seen = Date.now();
    if (entity.head.isPopupOpen()) {
      entity.head.setPopupContent(detailsElement(entity));
    }
    return true;
  }

  /* ---- stream --------------------------------------------------------- */

  /* Returns {name, messageId, lat, lon} or null for anything unusable. */
  function parseMessage(text) {
    var data;
    try {
      data = JSON.parse(text);
    } catch (e) {
      return null;
    }
    if (!data || typeof data !== 'object') return null;
    if (typeof data.name !== 'string' || data.name === '') return null;
    var lat = data.lat, lon = data.lon;
    if (typeof lat !== 'number' || typeof lon !== 'number' ||
        !isFinite(lat) || !isFinite(lon) ||
        lat < -90 || lat > 90 || lon < -180 || lon > 180) {
      return null;
    }
    return {
      name: data.name,
      messageId: (data.message_id === undefined || data.message_id === null)
        ? '' : String(data.message_id),
      lat: lat,
      lon: lon
    };
  }

  function handleMessage(event) {
    var msg = parseMessage(event.data);
    if (!msg) {
      state.ignored++;
      return;
    }
    state.events++;
    if (updateEntity(msg) && fitting()) {
      state.fitted++;
      scheduleFit();
    }
    scheduleHud();
  }

  function streamUrl() {
    return CONSUMER_PATH + encodeURIComponent(state.topic);
  }

  function connect() {
    state.reconnectTimer = null;
    setStatus(state.events ? 'reconnecting' : 'connecting');

    var source = new EventSource(streamUrl());
    state.source = source;

    source.onopen = function () {
      state.reconnectMs = RECONNECT_MIN_MS;
      setStatus('live');
    };
    source.onmessage = handleMessage;
    source.onerror = function () {
      if (source.readyState === EventSource.CONNECTING) {
        setStatus('reconnecting');          /* the browser retries by itself */
      } else {
        /* CLOSED: the browser gave up (e.g. 503 or a non-SSE answer). */
        source.close();
        scheduleReconnect();
      }
    };
  }

  function scheduleReconnect() {
    if (state.reconnectTimer) return;
    setStatus('reconnecting');
    state.reconnectTimer = window.setTimeout(connect, state.reconnectMs);
    state.reconnectMs = Math.min(state.reconnectMs * 2, RECONNECT_MAX_MS);
  }

  /* ---- status display ------------------------------------------------- */

  function buildHud(root) {
    ui.hud = el('div', 'gs-hud');
    ui.status = el('span', 'gs-status');
    ui.topic = el('span', 'gs-topic', state.topic);
    ui.topic.title = 'topic';
    ui.count = el('span', 'gs-count');
    ui.hud.appendChild(ui.status);
    ui.hud.appendChild(ui.topic);
    ui.hud.appendChild(ui.count);
    root.appendChild(ui.hud);

    ui.tileNote = el('div', 'gs-tile-note');
    ui.tileNote.hidden = true;
    root.appendChild(ui.tileNote);
  }

  function setStatus(status) {
    state.status = status;
    ui.status.textContent = status;
    ui.status.setAttribute('data-status', status);
  }

  function scheduleHud() {
    if (state.hudPending) return;
    state.hudPending = true;
    window.requestAnimationFrame(function () {
      state.hudPending = false;
      renderHud();
    });
  }

  function renderHud() {
    var n = state.entities.size;
    ui.count.textContent = n + (n === 1 ? ' entity' : ' entities');
    ui.count.title = state.events + ' events';
  }

  /* ---- test hook ------------------------------------------------------ */

  /* window.geostream: read-only snapshots for tests and debugging.
   *   geostream.entities -> Map name -> {name, colour, points: [[lat, lon]...],
   *                                      messageId, updates}   (a fresh copy)
   *   geostream.status, .topic, .trailCap, .events, .ignored, .view */
  function snapshotEntity(entity) {
    return Object.freeze({
      name: entity.name,
      colour: entity.colour,
      points: entity.line.getLatLngs().map(function (ll) { return [ll.lat, ll.lng]; }),
      messageId: entity.messageId,
      updates: entity.updates
    });
  }

  function exposeHook() {
    var hook = {};
    var getters = {
      entities: function () {
        var copy = new Map();
        state.entities.forEach(function (entity, name) {
          copy.set(name, snapshotEntity(entity));
        });
        return copy;
      },
      status: function () { return state.status; },
      topic: function () { return state.topic; },
      trailCap: function () { return state.trailCap; },
      events: function () { return state.events; },
      ignored: function () { return state.ignored; },
      view: function () {
        var c = state.map.getCenter();
        return { lat: c.lat, lon: c.lng, zoom: state.map.getZoom() };
      }
    };
    Object.keys(getters).forEach(function (key) {
      Object.defineProperty(hook, key, { get: getters[key], enumerable: true });
    });
    window.geostream = Object.freeze(hook);
  }

  /* ---- start ---------------------------------------------------------- */

  function start() {
    var container = document.getElementById('map');
    var root = document.body;
    var config = readConfig(container);
    state.topic = config.topic;
    state.trailCap = config.trailCap;
    document.title = 'geostream: ' + state.topic;

    buildHud(root);
    if (typeof window.L === 'undefined') {
      setStatus('error');
      showTileNote('Leaflet did not load from /leaflet/ (run npm install in html/).');
      return;
    }
    state.map = createMap(container);
    addTiles(state.map, config);
    renderHud();
    exposeHook();
    connect();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
