// Phone simulator: Buurtlijn's own calls (proposals, reminders) ring here;
// picking up and pressing keys go to the real TwiML webhooks as Twilio would.
(function () {
  "use strict";
  const phoneInput = document.getElementById("sim-phone");
  const state = document.getElementById("notify-state");
  const log = document.getElementById("notify-log");
  const keys = document.getElementById("notify-keys");
  const answerButton = document.getElementById("notify-answer");
  const declineButton = document.getElementById("notify-decline");
  const hangupButton = document.getElementById("notify-hangup");
  let ringing = null;   // the call id that rings now
  let talking = null;   // the call id we are in

  function line(text, who) {
    const item = document.createElement("li");
    item.textContent = (who === "you" ? "U: " : "Buurtlijn: ") + text;
    log.appendChild(item);
  }

  function show(reply) {
    for (const said of reply.said || []) { line(said, "buurtlijn"); }
    if (reply.hangup) { end(true); }
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
    });
    return response.json();
  }

  async function end(answered) {
    const id = talking || ringing;
    talking = null; ringing = null;
    keys.hidden = true; hangupButton.hidden = true; answerButton.hidden = true; declineButton.hidden = true;
    state.textContent = "Opgehangen.";
    if (id) { await post("calls/" + id + "/hangup", { answered: answered }); }
  }

  async function poll() {
    if (talking) { return; }
    const phone = phoneInput.value.trim();
    if (!phone) { return; }
    const response = await fetch("calls?phone=" + encodeURIComponent(phone));
    if (!response.ok) { return; }
    const data = await response.json();
    const waiting = data.calls.find(function (c) { return c.status === "shown"; });
    ringing = waiting ? waiting.id : null;
    answerButton.hidden = declineButton.hidden = !ringing;
    state.textContent = ringing ? "De telefoon gaat over: Buurtlijn belt u." : "Er belt nu niemand.";
  }

  answerButton.addEventListener("click", async function () {
    if (!ringing) { return; }
    talking = ringing; ringing = null;
    log.textContent = "";
    answerButton.hidden = declineButton.hidden = true;
    hangupButton.hidden = false; keys.hidden = false;
    state.textContent = "In gesprek met Buurtlijn.";
    show(await post("calls/" + talking + "/answer"));
  });
  declineButton.addEventListener("click", function () { end(false); });
  hangupButton.addEventListener("click", function () { end(true); });
  keys.addEventListener("click", async function (event) {
    const key = event.target.getAttribute("data-notify-key");
    if (!key || !talking) { return; }
    line("toets " + key, "you");
    show(await post("calls/" + talking + "/press", { digits: key }));
  });

  poll();
  setInterval(poll, 1500);
})();
