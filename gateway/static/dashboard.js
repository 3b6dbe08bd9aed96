// Brokers' dashboard: keeps a claimed item's lease alive while the broker works,
// and shows the progress of a call-back. Everything works without this script too.
(function () {
  "use strict";

  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = tokenMeta ? tokenMeta.getAttribute("content") : "";

  // --- lease heartbeat: only while the broker is active on the page -------------
  var page = document.querySelector("[data-heartbeat-url]");
  if (page) {
    var heartbeatUrl = page.getAttribute("data-heartbeat-url");
    var lastActivity = Date.now();
    var ACTIVE_WINDOW = 10 * 60 * 1000; // activity in the last 10 minutes counts as working
    var INTERVAL = 2 * 60 * 1000;
    ["keydown", "pointerdown", "input", "scroll"].forEach(function (name) {
      document.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
    });
    var leaseText = document.getElementById("lease-text");
    var template = leaseText ? leaseText.textContent : "";
    window.setInterval(function () {
      if (Date.now() - lastActivity > ACTIVE_WINDOW) { return; }
      fetch(heartbeatUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, "Accept": "application/json" }
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (result) {
        if (result.ok && leaseText && result.body.until) {
          leaseText.textContent = template.replace(/\d{1,2}:\d{2}/, result.body.until);
        } else if (!result.ok) {
          window.location.reload(); // the lease is gone: show the page as it now is
        }
      }).catch(function () { /* offline for a moment: the next beat tries again */ });
    }, INTERVAL);
  }

  // --- call progress ----------------------------------------------------------------
  var progress = document.getElementById("call-progress");
  if (progress && progress.getAttribute("data-final") !== "true") {
    var statusUrl = progress.getAttribute("data-status-url");
    var text = document.getElementById("call-progress-text");
    var polls = 0;
    var poll = function () {
      polls += 1;
      fetch(statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (state) {
          if (text.textContent !== state.label) { text.textContent = state.label; }
          progress.className = "call-progress state-" + state.state;
          if (!state.final && polls < 400) { window.setTimeout(poll, 1500); }
        })
        .catch(function () { if (polls < 400) { window.setTimeout(poll, 3000); } });
    };
    window.setTimeout(poll, 1000);
  }
})();
