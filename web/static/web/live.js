// Live updates for the care-team pages: one WebSocket to /ws/updates/ (the session cookie
// authenticates it), resumed with the last event id after a drop so nothing is lost. Each
// event becomes DOM events on <body> that the page's htmx regions listen to
// (hx-trigger="parcours-... from:body"): the region re-fetches itself in place. A re-fetch
// that fails is tried again until it succeeds, and meanwhile the banner says the page is
// not up to date (never "connected").
(function () {
  "use strict";
  var KEY = "parcours.lastEventId";
  var banner = document.getElementById("live-status");
  var wasLost = false;
  var retry = 500;
  var seen = {};
  var pending = {};
  var socketState = "connecting";
  var failing = {};  // live event name -> delay before its region's next re-fetch
  var welcomed = false;  // a connection was accepted (its session was valid) at least once

  // The banner shows the socket's state, unless a region failed to re-fetch: then the page
  // is out of date even though events arrive.
  function show() {
    if (!banner) return;
    var state = socketState;
    if (state !== "lost" && Object.keys(failing).length) state = "stale";
    banner.dataset.state = state;
    banner.textContent = banner.dataset[state] || "";
  }

  function setStatus(state) {
    socketState = state;
    show();
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
      welcomed = true;
      if (lastId() === null) remember(message.id);
      return;
    }
    if (message.type !== "event" || seen[message.id]) return;
    seen[message.id] = true;
    remember(message.id);
    var kind = message.event || "";
    var payload = message.payload || {};
    if (message.patient != null) {
      fire("parcours-patient-" + message.patient);
      // The triage board shows each patient's risk, readings, alerts and their tasks.
      fire("parcours-triage");
    }
    if (kind.indexOf("task.") === 0) {
      fire("parcours-tasks");
      if (payload.task != null) fire("parcours-task-" + payload.task);
    } else if (kind === "pathway.risk_changed") {
      // The worklists and the inbox order by the patient's risk.
      fire("parcours-tasks");
      fire("parcours-alerts");
    } else if (kind.indexOf("pathway.") === 0) {
      fire("parcours-tasks");
    } else if (kind.indexOf("alert.") === 0) {
      // Raised, escalated (back in the inbox) or acknowledged (out of it).
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
      if (e.code === 4401 || e.code === 4403) {
        setStatus("lost");
        // The session ended (idle or too old, logged out, password changed, account
        // deactivated): reloading shows the login page rather than a page of patient data
        // left open.
        if (welcomed) location.reload();
        return;
      }
      if (e.code === 4400) sessionStorage.removeItem(KEY);
      wasLost = true;
      setStatus("lost");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  // The live event a region re-fetches on (hx-trigger="parcours-... from:body"), if any.
  function liveEvent(elt) {
    var trigger = (elt && elt.getAttribute && elt.getAttribute("hx-trigger")) || "";
    var match = /^(parcours-[\w-]+) from:body/.exec(trigger);
    return match ? match[1] : null;
  }

  // A re-fetch made because an event came is not the user's activity: it does not keep an
  // idle session open (web/sessions.py).
  document.body.addEventListener("htmx:configRequest", function (e) {
    if (liveEvent(e.detail.elt)) e.detail.headers["Parcours-Live-Refresh"] = "1";
  });

  // A re-fetch's answer arrives (fired on the region before it is replaced, so it reaches
  // <body>). One that was redirected (the session ended: the login page) is not the region:
  // show the whole page instead of swapping in nothing.
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var name = liveEvent(e.detail.elt);
    if (!name || e.detail.isError) return;
    var asked = new URL(e.detail.requestConfig.path, location.href).pathname;
    if (e.detail.xhr.responseURL && new URL(e.detail.xhr.responseURL).pathname !== asked) {
      e.detail.shouldSwap = false;
      location.reload();
      return;
    }
    if (name in failing) {
      delete failing[name];
      show();
    }
  });

  // A re-fetch failed (no swap: the region is still in the page).
  document.body.addEventListener("htmx:afterRequest", function (e) {
    var name = liveEvent(e.detail.elt);
    if (!name || e.detail.successful) return;
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      // Not a passing failure: the page no longer applies (access ended, not found).
      location.reload();
      return;
    }
    // The server failed or could not be reached: try again, less and less often.
    var delay = failing[name] || 1000;
    failing[name] = Math.min(delay * 2, 15000);
    show();
    setTimeout(function () { fire(name); }, delay);
  });

  setStatus("connecting");
  connect();
})();
