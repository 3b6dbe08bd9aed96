// Phone simulator: sends signed webhook requests through the server and
// shows what the gateway texts back. No framework, no external assets.
(function () {
  "use strict";
  const phoneInput = document.getElementById("sim-phone");
  const smsForm = document.getElementById("sms-form");
  const smsBody = document.getElementById("sms-body");
  const smsLog = document.getElementById("sms-log");
  let lastId = 0;
  let lastPhone = null;

  const STATUS_WORDS = {
    received: "ontvangen", handled: "gelezen", pending: "wacht",
    submitting: "wordt verstuurd", queued: "verstuurd", sent: "verstuurd", delivered: "afgeleverd",
    shown: "getoond (demo, niet echt verstuurd)", blocked: "niet verstuurd", failed: "mislukt",
    undelivered: "niet afgeleverd",
  };

  function phone() { return phoneInput.value.trim(); }

  function addBubble(message) {
    const item = document.createElement("li");
    item.className = "bubble " + (message.direction === "inbound" ? "from-resident" : "from-gateway");
    const text = document.createElement("p");
    text.textContent = message.body || "(leeg bericht)";
    item.appendChild(text);
    const meta = document.createElement("span");
    meta.className = "meta";
    const who = message.direction === "inbound" ? "u" : "Buurtlijn";
    let info = who + " · " + (STATUS_WORDS[message.status] || message.status);
    if (message.segments) { info += " · " + message.segments + " sms-deel" + (message.segments > 1 ? "en" : ""); }
    meta.textContent = info;
    item.appendChild(meta);
    smsLog.appendChild(item);
    smsLog.scrollTop = smsLog.scrollHeight;
  }

  async function refresh() {
    if (phone() !== lastPhone) {
      lastPhone = phone();
      lastId = 0;
      smsLog.textContent = "";
    }
    if (!lastPhone) { return; }
    const response = await fetch("messages?phone=" + encodeURIComponent(lastPhone) + "&after=" + lastId);
    if (!response.ok) { return; }
    const data = await response.json();
    for (const message of data.messages) {
      addBubble(message);
      lastId = Math.max(lastId, message.id);
    }
  }

  smsForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const button = smsForm.querySelector("button");
    button.disabled = true;
    try {
      await fetch("sms", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ from: phone(), body: smsBody.value }),
      });
      await refresh();
    } finally {
      button.disabled = false;
    }
  });

  for (const chip of document.querySelectorAll("[data-example]")) {
    chip.addEventListener("click", function () {
      smsBody.value = chip.dataset.example;
      smsBody.focus();
    });
  }

  phoneInput.addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 1500);
  window.buurtlijnSimulator = { phone: phone, refresh: refresh };
})();
