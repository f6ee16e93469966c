// Frontend for the producer API. Relative URLs: served from the same origin as /api/.
"use strict";

const API = "api";
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const $ = (id) => document.getElementById(id);

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = false;
}

function clearError() {
  const el = $("error");
  el.textContent = "";
  el.hidden = true;
}

class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status; // 0: no answer reached the page
    this.body = body;
  }
}

async function callApi(path, options = {}) {
  let response;
  try {
    response = await fetch(`${API}/${path}`, { cache: "no-store", ...options });
  } catch (err) {
    throw new ApiError(`API unreachable (${err.message})`, 0, null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.error ? body.error : response.statusText;
    throw new ApiError(`API error ${response.status}: ${detail}`, response.status, body);
  }
  return body;
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// One idempotency key per submission. It is kept while the outcome is unknown, so sending
// the same value again (by hand or by the automatic retries) stores it at most once.
let pending = null; // { value, key }

const RETRY_DELAYS_MS = [500, 1500];

function outcomeUnknown(err) {
  // No answer at all, a gateway error, or the producer saying it does not know.
  if (err.status === 0 || err.status === 502 || err.status === 504) return true;
  return err.status === 503 && !(err.body && err.body.outcome === "not_accepted");
}

function retryable(err) {
  return err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504;
}

async function postValue(value, key) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      // Sent as a raw JSON number so 64-bit values keep their precision.
      return await callApi("count", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: `{"count": ${value}}`,
      });
    } catch (err) {
      if (!retryable(err) || attempt >= RETRY_DELAYS_MS.length) throw err;
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
    }
  }
}

async function refresh() {
  try {
    const data = await callApi("count");
    $("count").textContent = String(data.count);
    $("latest").textContent = data.latest === null ? "none yet" : String(data.latest);
    $("hostname").textContent = data.hostname || "";
    clearError();
  } catch (err) {
    showError(`Could not load the count. ${err.message}`);
  }
}

function parseValue(text) {
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed)) return null;
  const big = BigInt(trimmed);
  if (big < INT64_MIN || big > INT64_MAX) return null;
  return trimmed;
}

async function send(event) {
  event.preventDefault();
  const value = parseValue($("value").value);
  if (value === null) {
    showError("The value must be an integer between -9223372036854775808 and 9223372036854775807.");
    return;
  }
  $("send").disabled = true;
  if (pending === null || pending.value !== value) pending = { value, key: newKey() };
  try {
    const data = await postValue(value, pending.key);
    pending = null;
    const note = data.replayed ? " It had already been accepted; it is stored once." : "";
    $("result").textContent = `Accepted ${data.count} (message ${data.id}).${note}`;
    clearError();
    $("value").value = String(Math.floor(Date.now() / 1000));
    // The consumer stores it asynchronously: refresh a few times.
    for (const delay of [300, 1000, 2500]) setTimeout(refresh, delay);
  } catch (err) {
    if (outcomeUnknown(err)) {
      showError(
        `It is not known whether ${value} was accepted: the API did not answer in time. ` +
          "Send it again: it reuses the same key, so it is stored at most once. " +
          err.message,
      );
    } else {
      pending = null;
      showError(`The value was not accepted. ${err.message}`);
    }
  } finally {
    $("send").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("value").value = String(Math.floor(Date.now() / 1000));
  $("post-form").addEventListener("submit", send);
  $("refresh").addEventListener("click", refresh);
  refresh();
  setInterval(refresh, 5000);
});
