// Lens live tail on the events page: a switch that opens an EventSource on the stream API (the
// session's cookie authenticates it) and puts each matching event at the top of the table as it is
// stored. Every value is set as text, never as HTML: event content is hostile.
(function () {
  "use strict";

  var MAX_ROWS = 500;
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function shortUtc(text) {
    var d = new Date(text);
    return MONTHS[d.getUTCMonth()] + " " + pad(d.getUTCDate()) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  // As the server writes a row's title: 2026-11-23 09:15:02.412 UTC.
  function fullUtc(text) {
    return new Date(text).toISOString().replace("T", " ").replace("Z", " UTC");
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return (ms >= 10 || ms === Math.floor(ms) ? Math.round(ms) : ms.toFixed(1)) + " ms";
    var s = ms / 1000;
    return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function cell(className, child) {
    var td = el("td", className ? { "class": className } : {});
    if (child) td.appendChild(child);
    return td;
  }

  function row(event) {
    var tr = el("tr", { "class": "d-" + event.decision + " live-new", "data-event-id": event.id });
    var href = "/events/" + encodeURIComponent(event.id) + "/";
    tr.appendChild(cell("nowrap", el("a", { href: href, title: fullUtc(event.timestamp) }, shortUtc(event.timestamp))));
    tr.appendChild(cell("", el("a", { "class": "mono cell-clip", href: href }, event.tool || event.method)));
    var actor = event.actor ? el("span", { "class": "cell-clip", title: event.actor }, event.actor) : el("span", { "class": "muted" }, "anonymous");
    tr.appendChild(cell("", actor));
    tr.appendChild(cell("hide-sm", el("span", { "class": "mono" }, event.slug)));
    tr.appendChild(cell("", el("span", { "class": "badge d-" + event.decision }, event.decision)));
    var outcome = cell("hide-md", el("span", { "class": "badge " + (event.outcome === "success" ? "o-success" : "o-bad") }, event.outcome));
    if (event.status_code) outcome.appendChild(el("span", { "class": "muted small" }, " " + event.status_code));
    tr.appendChild(outcome);
    tr.appendChild(cell("num hide-sm", document.createTextNode(duration(event.duration_ms))));
    var trace = el("a", { "class": "mono cell-clip short", href: "/traces/" + encodeURIComponent(event.trace_id) + "/" }, event.trace_id);
    tr.appendChild(cell("hide-md", trace));
    return tr;
  }

  onReady(function () {
    var toggle = document.querySelector("[data-lens-live]");
    var tbody = document.querySelector("table.events tbody");
    if (!toggle || !tbody || !window.EventSource) return;
    var state = document.querySelector("[data-lens-live-state]");
    var total = document.querySelector("[data-lens-total]");
    var source = null, added = 0;
    toggle.closest("[data-lens-live-switch]").hidden = false;

    function say(text) { if (state) state.textContent = text; }

    toggle.addEventListener("change", function () {
      if (!toggle.checked) {
        if (source) source.close();
        source = null;
        say(added ? added + " new while live" : "");
        return;
      }
      source = new EventSource(toggle.getAttribute("data-lens-live"), { withCredentials: true });
      say("Live: waiting for events…");
      source.addEventListener("open", function () { say("Live: waiting for events…"); });
      source.addEventListener("error", function () { say("Live: reconnecting…"); });
      source.addEventListener("audit-event", function (message) {
        var event;
        try { event = JSON.parse(message.data); } catch (e) { return; }
        var empty = tbody.querySelector("td.empty");
        if (empty) empty.parentNode.remove();
        tbody.insertBefore(row(event), tbody.firstChild);
        while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(tbody.rows.length - 1);
        added += 1;
        if (total) total.textContent = String(parseInt(total.textContent, 10) + 1);
        say("Live: " + added + " new");
      });
    });
  });
})();
