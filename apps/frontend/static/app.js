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

async function callApi(path, options = {}) {
  let response;
  try {
    response = await fetch(`${API}/${path}`, { cache: "no-store", ...options });
  } catch (err) {
    throw new Error(`API unreachable (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.error ? body.error : response.statusText;
    throw new Error(`API error ${response.status}: ${detail}`);
  }
  return body;
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
  try {
    // Sent as a raw JSON number so 64-bit values keep their precision.
    const data = await callApi("count", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: `{"count": ${value}}`,
    });
    $("result").textContent = `Accepted ${data.count} (message ${data.id}).`;
    clearError();
    $("value").value = String(Math.floor(Date.now() / 1000));
    // The consumer stores it asynchronously: refresh a few times.
    for (const delay of [300, 1000, 2500]) setTimeout(refresh, delay);
  } catch (err) {
    showError(`The value was not accepted. ${err.message}`);
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
