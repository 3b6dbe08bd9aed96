// Call simulator: the browser plays the phone. It keeps the TwiML verbs it was
// given and asks the server to post each next request to the real webhooks,
// signed as Twilio would. No framework, no external assets.
(function () {
  "use strict";
  const $ = function (id) { return document.getElementById(id); };
  const phoneInput = $("sim-phone");
  const withheld = $("call-withheld");
  const startButton = $("call-start");
  const hangupButton = $("call-hangup");
  const state = $("call-state");
  const callLog = $("call-log");
  const keys = $("call-keys");
  const typedLine = $("call-typed");
  const silenceButton = $("call-silence");
  const recordForm = $("call-record");
  const dialBox = $("call-dial");
  if (!startButton) { return; }

  let call = null;      // {sid, from, started}
  let verbs = [];       // what the current TwiML still has to do
  let waiting = null;   // the <Gather>, <Record> or <Dial> we wait on
  let typed = "";
  let digitTimer = null;
  let busy = false;

  function log(kind, text, language, voice) {
    const item = document.createElement("li");
    item.className = kind;
    const body = document.createElement("span");
    body.textContent = text;
    if (language) { item.lang = language; item.dir = "auto"; }
    item.appendChild(body);
    if (voice) {
      const meta = document.createElement("span");
      meta.className = "voice";
      meta.textContent = voice;
      item.appendChild(meta);
    }
    callLog.appendChild(item);
    callLog.scrollTop = callLog.scrollHeight;
  }

  function show(part) {
    keys.hidden = part !== "keys";
    recordForm.hidden = part !== "record";
    dialBox.hidden = part !== "dial";
  }

  function setBusy(value) {
    busy = value;
    for (const button of document.querySelectorAll(".call-panel button")) {
      if (button === startButton) { button.disabled = value || call !== null; continue; }
      if (button === hangupButton) { button.disabled = call === null; continue; }
      button.disabled = value;
    }
  }

  async function post(path, payload) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
    return data;
  }

  async function send(path, extra) {
    if (!call) { return; }
    setBusy(true);
    try {
      const data = await post(path, Object.assign({ call_sid: call.sid, from: call.from, duration: seconds() }, extra));
      if (data.ended) { finish("U heeft opgehangen."); return; }
      await run(data.verbs || []);
    } catch (error) {
      log("note", "Buurtlijn gaf geen goed antwoord: " + error.message);
      await end("Het gesprek is afgebroken.");
    } finally {
      setBusy(false);
    }
  }

  function seconds() { return call ? Math.max(1, Math.round((Date.now() - call.started) / 1000)) : 1; }

  async function run(newVerbs) {
    verbs = newVerbs.slice();
    waiting = null;
    while (verbs.length) {
      const verb = verbs.shift();
      if (verb.verb === "say") {
        for (const said of verb.say) { log("heard", said.text, said.language, said.voice); }
      } else if (verb.verb === "gather") {
        for (const said of verb.say) { log("heard", said.text, said.language, said.voice); }
        waiting = verb;
        typed = "";
        typedLine.textContent = "";
        show("keys");
        // With a number of digits Twilio goes on after the last one; otherwise the finish key ends it.
        state.textContent = verb.numDigits === 1 ? "Druk één toets."
          : verb.numDigits > 1 ? "Toets de " + verb.numDigits + " cijfers."
          : "Toets de cijfers" + (verb.finishOnKey ? " en dan " + verb.finishOnKey + "." : ".");
        return;
      } else if (verb.verb === "record") {
        waiting = verb;
        log("note", "Piep. Buurtlijn neemt op.");
        show("record");
        state.textContent = "Spreek uw bericht in.";
        return;
      } else if (verb.verb === "dial") {
        waiting = verb;
        $("call-dial-number").textContent = verb.number;
        show("dial");
        state.textContent = "Doorverbinden…";
        return;
      } else if (verb.verb === "redirect") {
        await send("call/answer", { url: verb.url, digits: null });
        return;
      } else if (verb.verb === "hangup") {
        await end("Buurtlijn heeft opgehangen.");
        return;
      }
    }
    await end("Het gesprek is afgelopen.");
  }

  function clearDigitTimer() {
    if (digitTimer) { clearTimeout(digitTimer); digitTimer = null; }
  }

  async function submit(digits, finishedOn) {
    clearDigitTimer();
    const gather = waiting;
    waiting = null;
    show(null);
    log("did", digits ? "U toetst: " + digits + (finishedOn ? " " + finishedOn : "") : "U drukt niets.");
    await send("call/answer", { url: gather.url, digits: digits, finished_on_key: finishedOn || null });
  }

  function press(key) {
    if (busy || !waiting || waiting.verb !== "gather") { return; }
    const finish = waiting.finishOnKey || "";
    if (finish && finish.indexOf(key) >= 0) {
      if (typed) { submit(typed, key); }
      return;  // a finish key before any digit does nothing, as at Twilio
    }
    typed += key;
    typedLine.textContent = typed;
    if (waiting.numDigits && typed.length >= waiting.numDigits) { submit(typed); return; }
    clearDigitTimer();
    const gather = waiting;
    digitTimer = setTimeout(function () { if (waiting === gather && typed) { submit(typed); } }, gather.timeout * 1000);
  }

  async function silence() {
    if (busy || !waiting || waiting.verb !== "gather") { return; }
    if (typed) { await submit(typed); return; }
    if (waiting.actionOnEmptyResult) { await submit(""); return; }
    waiting = null;
    show(null);
    log("did", "U drukt niets.");
    await run(verbs);
  }

  async function start() {
    if (call || busy) { return; }
    callLog.textContent = "";
    setBusy(true);
    try {
      const data = await post("call/start", { from: phoneInput.value.trim(), withheld: withheld.checked });
      call = { sid: data.call_sid, from: data.from, started: Date.now() };
      log("note", "U belt Buurtlijn" + (data.from === "anonymous" ? " met een afgeschermd nummer."
        : data.unknown_number ? " vanaf een nummer dat niet bestaat: Buurtlijn ziet het als afgeschermd." : "."));
      state.textContent = "Verbonden.";
      await run(data.verbs || []);
    } catch (error) {
      log("note", "Bellen lukte niet: " + error.message);
      call = null;
    } finally {
      setBusy(false);
    }
  }

  async function end(reason) {
    if (!call) { return; }
    const ending = call;
    try {
      await post("call/hangup", { call_sid: ending.sid, from: ending.from, duration: seconds() });
    } catch (error) {
      log("note", "De eindmelding aan Buurtlijn lukte niet: " + error.message);
    }
    finish(reason);
  }

  function finish(reason) {
    clearDigitTimer();
    call = null;
    waiting = null;
    verbs = [];
    show(null);
    log("note", reason);
    state.textContent = "Geen gesprek.";
    setBusy(false);
  }

  startButton.addEventListener("click", start);
  hangupButton.addEventListener("click", function () { log("did", "U hangt op."); end("U heeft opgehangen."); });
  silenceButton.addEventListener("click", silence);
  for (const button of document.querySelectorAll(".keypad .key")) {
    button.addEventListener("click", function () { press(button.dataset.key); });
  }
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (!call || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) { return; }
    if (event.key.length === 1 && "0123456789*#".indexOf(event.key) >= 0) {
      event.preventDefault();
      press(event.key);
    }
  });
  recordForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!waiting || waiting.verb !== "record") { return; }
    const record = waiting;
    waiting = null;
    const length = Math.max(1, Math.min(record.maxLength, parseInt($("call-seconds").value, 10) || 5));
    log("did", "U zegt (" + length + " s): " + $("call-speech").value + " #");
    show(null);
    send("call/record", { url: record.url, seconds: length, end: "#" });
  });
  $("call-record-nothing").addEventListener("click", function () {
    if (!waiting || waiting.verb !== "record") { return; }
    waiting = null;
    show(null);
    log("did", "U zegt niets.");
    run(verbs);
  });
  $("call-record-hangup").addEventListener("click", function () {
    if (!waiting || waiting.verb !== "record") { return; }
    const record = waiting;
    waiting = null;
    const length = Math.max(1, Math.min(record.maxLength, parseInt($("call-seconds").value, 10) || 5));
    log("did", "U zegt (" + length + " s): " + $("call-speech").value + " — en hangt op.");
    show(null);
    send("call/record", { url: record.url, seconds: length, end: "hangup" });
  });
  for (const button of dialBox.querySelectorAll("button[data-dial]")) {
    button.addEventListener("click", function () {
      if (!waiting || waiting.verb !== "dial") { return; }
      const dial = waiting;
      waiting = null;
      show(null);
      log("did", button.textContent);
      if (dial.url) { send("call/dial", { url: dial.url, dial_status: button.dataset.dial }); } else { run(verbs); }
    });
  }
  show(null);
  setBusy(false);
})();
