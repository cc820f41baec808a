// Live updates for the care-team pages: one WebSocket to /ws/updates/ (the session cookie
// authenticates it), resumed with the last event id after a drop so nothing is lost. Each
// event becomes DOM events on <body> that the page's htmx regions listen to
// (hx-trigger="parcours-... from:body"): the region re-fetches itself in place.
(function () {
  "use strict";
  var KEY = "parcours.lastEventId";
  var banner = document.getElementById("live-status");
  var wasLost = false;
  var retry = 500;
  var seen = {};
  var pending = {};

  function setStatus(state) {
    if (!banner) return;
    banner.dataset.state = state;
    banner.textContent = banner.dataset[state] || "";
  }

  function lastId() {
    var v = parseInt(sessionStorage.getItem(KEY) || "", 10);
    return isNaN(v) ? null : v;
  }

  function remember(id) {
    var last = lastId();
    if (last === null || id > last) sessionStorage.setItem(KEY, String(id));
  }

  // Bursts (a completed task moves the pathway and opens new tasks) become one re-fetch
  // per region.
  function fire(name) {
    if (pending[name]) return;
    pending[name] = setTimeout(function () {
      delete pending[name];
      document.body.dispatchEvent(new CustomEvent(name, { bubbles: true }));
    }, 30);
  }

  function handle(message) {
    if (message.type === "welcome") {
      if (lastId() === null) remember(message.id);
      return;
    }
    if (message.type !== "event" || seen[message.id]) return;
    seen[message.id] = true;
    remember(message.id);
    var kind = message.event || "";
    var payload = message.payload || {};
    if (message.patient != null) fire("parcours-patient-" + message.patient);
    if (kind.indexOf("task.") === 0) {
      fire("parcours-tasks");
      if (payload.task != null) fire("parcours-task-" + payload.task);
    } else if (kind.indexOf("pathway.") === 0) {
      fire("parcours-tasks");
    } else if (kind === "alert.raised") {
      fire("parcours-alerts");
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + location.host + "/ws/updates/";
    var last = lastId();
    if (last !== null) url += "?last_event_id=" + last;
    var socket = new WebSocket(url);
    socket.onopen = function () {
      retry = 500;
      setStatus(wasLost ? "back" : "connected");
      if (wasLost) {
        // Whatever changed while away arrives as resumed events; re-fetch anyway in case
        // the page was loaded before the first event this connection will replay.
        fire("parcours-tasks");
      }
    };
    socket.onmessage = function (e) {
      try { handle(JSON.parse(e.data)); } catch (err) { /* not JSON: ignore */ }
    };
    socket.onclose = function (e) {
      if (e.code === 4401 || e.code === 4403) { setStatus("lost"); return; }
      if (e.code === 4400) sessionStorage.removeItem(KEY);
      wasLost = true;
      setStatus("lost");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  setStatus("connecting");
  connect();
})();
