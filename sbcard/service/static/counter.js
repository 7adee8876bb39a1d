// The counter page of sbcard serve: read the card, follow insert/remove, PIN via the PIN source.
// Plain JavaScript, no library: counter machines are often offline.
"use strict";

const $ = (id) => document.getElementById(id);
let kiosk = false;
let readNumber = 0;   // a photo that arrives after a newer read or a removal is dropped

function setStatus(state, zh, en) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = zh + " ";
  const span = document.createElement("span");
  span.className = "en";
  span.textContent = en;
  el.appendChild(span);
}

function say(text, isError) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "message error" : "message";
}

function clearCard() {
  $("card").hidden = true;
  $("name").textContent = "";
  $("ssn").textContent = "";
  $("national").textContent = "";
  $("fields").tBodies[0].replaceChildren();
  readNumber += 1;
  $("photo").hidden = true;
  $("photo").removeAttribute("src");
  $("photo-note").textContent = "";
}

function showCard(card) {
  const body = $("fields").tBodies[0];
  body.replaceChildren();
  const labels = card.labels || {};
  for (const [key, value] of Object.entries(card.fields || {})) {
    if (value === null || typeof value === "object") continue;
    const row = body.insertRow();
    const label = labels[key];
    const head = row.insertCell();
    head.textContent = label ? label.zh + " " : key;
    if (label) {
      const en = document.createElement("span");
      en.className = "en";
      en.textContent = label.en;
      head.appendChild(en);
    }
    row.insertCell().textContent = String(value);
  }
  $("name").textContent = (card.fields && card.fields.name) || "";
  $("ssn").textContent = (card.fields && card.fields.ssn) || "";
  $("national").textContent = card.national || ("(" + card.national_code + ") " + (card.national_message || ""));
  $("card").hidden = false;
}

async function call(method, path, body) {
  const options = { method: method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  return response.json();
}

// The photo is a second call (GET /v1/card/photo): an image, or a JSON error object.
// It becomes a data: URL (the page's CSP allows img-src 'self' data:, nothing else).
async function loadPhoto() {
  const mine = ++readNumber;
  $("photo-note").textContent = "";
  try {
    const response = await fetch("/v1/card/photo");
    const type = response.headers.get("Content-Type") || "";
    if (response.ok && type.startsWith("image/")) {
      const blob = await response.blob();
      const url = await new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
      });
      if (mine !== readNumber) return;
      $("photo").src = url;
      $("photo").hidden = false;
      return;
    }
    const answer = await response.json();
    if (mine !== readNumber) return;
    $("photo").hidden = true;
    $("photo").removeAttribute("src");
    $("photo-note").textContent =
      answer.code === -2201 ? "照片需要密钥 photo needs a key source"
      : answer.code === -27266 ? "无照片 No photo"
      : "照片 Photo: " + answer.code + " " + answer.message;
  } catch (err) {
    if (mine === readNumber) $("photo-note").textContent = "照片 Photo: " + err;
  }
}

async function readCard() {
  say("读卡中… Reading…", false);
  try {
    const answer = await call("GET", "/v1/card");
    if (answer.code === 0) {
      showCard(answer.card);
      say("读卡成功 Card read", false);
      loadPhoto();
    } else {
      clearCard();
      say(answer.code + ": " + answer.message, true);
    }
  } catch (err) {
    say("服务不可用 Service unreachable: " + err, true);
  }
}

async function pin(kind) {
  const body = { iType: 3 };
  if (kiosk) {
    if (kind === "verify") body.pin = $("pin").value;
    else { body.oldPin = $("pin").value; body.newPin = $("new-pin").value; }
  }
  say(kind === "verify" ? "请在密码键盘输入密码… Enter the PIN on the PIN source…"
                        : "请按提示输入旧密码和新密码… Follow the PIN source…", false);
  try {
    const answer = await call("POST", "/v1/pin/" + kind, body);
    say(answer.code === 0 ? (kind === "verify" ? "密码正确 PIN correct" : "密码已修改 PIN changed")
                          : answer.code + ": " + answer.message, answer.code !== 0);
  } catch (err) {
    say("服务不可用 Service unreachable: " + err, true);
  } finally {
    $("pin").value = "";
    $("new-pin").value = "";
  }
}

function followEvents() {
  const ws = new WebSocket("ws://" + location.host + "/v1/events");
  let keepAlive = null;
  ws.onopen = () => { keepAlive = setInterval(() => ws.send("ping"), 30000); };
  ws.onmessage = (e) => {
    const event = JSON.parse(e.data);
    if (event.present === true) setStatus("present", "卡已插入", "card inserted");
    else if (event.present === false) setStatus("absent", "请插卡", "insert a card");
    if (event.event === "inserted" || (event.event === "state" && event.present === true)) {
      readCard();
    }
    if (event.event === "removed") { clearCard(); say("卡已拔出 Card removed", false); }
  };
  ws.onclose = () => {
    clearInterval(keepAlive);
    setStatus("offline", "服务断开，重连中", "service lost, reconnecting");
    setTimeout(followEvents, 2000);
  };
}

async function start() {
  $("read").addEventListener("click", readCard);
  $("verify").addEventListener("click", () => pin("verify"));
  $("change").addEventListener("click", () => pin("change"));
  try {
    const health = await call("GET", "/v1/health");
    kiosk = health.kiosk_pin_from_page === true;
    $("kiosk").hidden = !kiosk;
  } catch (err) {
    setStatus("offline", "服务不可用", "service unreachable");
  }
  followEvents();
}

start();
