// Lens charts: the histogram of the current filter (uPlot, stacked allow/deny/alert bars), drag to
// zoom (rewrites since/until in the URL), and the time-range picker. Progressive: without this file
// the page shows the total and the filter panel's own time fields.
(function () {
  "use strict";

  var TZ_KEY = "lens-tz";
  var DECISIONS = ["allow", "deny", "alert"];

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function zone() {
    try { return window.localStorage.getItem(TZ_KEY) === "local" ? "local" : "utc"; } catch (e) { return "utc"; }
  }

  function setZone(value) {
    try { window.localStorage.setItem(TZ_KEY, value); } catch (e) { /* private mode: this page only */ }
  }

  function cssColor(el, name, fallback) {
    var value = window.getComputedStyle(el).getPropertyValue(name).trim();
    return value || fallback;
  }

  // The URL of this page with since/until set (and no cursor: a new window starts at its newest).
  function urlWithWindow(since, until, base) {
    var url = new URL(base || window.location.href, window.location.href);
    url.searchParams.delete("cursor");
    if (since) url.searchParams.set("since", since); else url.searchParams.delete("since");
    if (until) url.searchParams.set("until", until); else url.searchParams.delete("until");
    return url.toString();
  }

  function iso(seconds) {
    return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
  }

  function histogram(el) {
    if (!window.uPlot) return;
    fetch(el.getAttribute("data-lens-histogram"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (body) { draw(el, body); })
      .catch(function () { el.textContent = "The chart could not be loaded."; el.classList.add("chart-failed"); });
  }

  function draw(el, body) {
    var times = [], raw = { allow: [], deny: [], alert: [] };
    body.buckets.forEach(function (b) {
      times.push(Date.parse(b.start) / 1000);
      DECISIONS.forEach(function (d) { raw[d].push(b[d]); });
    });
    if (!times.length) { el.textContent = "No events in this window."; el.classList.add("chart-empty"); return; }
    // Stacked: each series is drawn as the sum of itself and those below it, tallest first.
    var stacks = { allow: [], deny: [], alert: [] };
    times.forEach(function (_, i) {
      stacks.allow.push(raw.allow[i]);
      stacks.deny.push(raw.allow[i] + raw.deny[i]);
      stacks.alert.push(raw.allow[i] + raw.deny[i] + raw.alert[i]);
    });
    var order = ["alert", "deny", "allow"];
    var colors = { allow: cssColor(el, "--allow", "#1f7a4d"), deny: cssColor(el, "--deny", "#b42318"), alert: cssColor(el, "--alert-edge", "#e09b1a") };
    var bars = window.uPlot.paths.bars({ size: [0.9, 40], align: 1 });
    var local = zone() === "local";
    var opts = {
      width: Math.max(el.clientWidth, 200),
      height: el.clientWidth < 500 ? 140 : 180,
      tzDate: local ? function (ts) { return new Date(ts * 1000); } : function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      legend: { show: el.clientWidth >= 500 },  // on a phone it would wrap under the plot; the bars keep Lens's decision colours
      scales: { x: { time: true, range: function (u, min, max) { return [min, max + (times[1] - times[0] || 60)]; } } },
      axes: [
        { stroke: cssColor(el, "--muted", "#5d6778") },
        // Counts are whole: ticks at whole steps only.
        { stroke: cssColor(el, "--muted", "#5d6778"), size: 48, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7] },
      ],
      series: [{ label: local ? "Local time" : "UTC" }].concat(order.map(function (d) {
        return {
          label: d, fill: colors[d], stroke: colors[d], width: 0, paths: bars, points: { show: false },
          value: function (u, v, si, i) { return i == null ? "" : raw[d][i]; },
        };
      })),
      hooks: {
        setSelect: [function (u) {
          if (u.select.width < 4) return;
          var from = Math.floor(u.posToVal(u.select.left, "x"));
          var to = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
          window.location.assign(urlWithWindow(iso(from), iso(to), el.getAttribute("data-lens-zoom-to")));
        }],
      },
    };
    el.textContent = "";
    var plot = new window.uPlot(opts, [times, stacks.alert, stacks.deny, stacks.allow], el);
    el.setAttribute("data-lens-interval", body.interval);
    var hint = el.parentNode.querySelector("[data-lens-chart-hint]");
    if (hint) hint.hidden = false;
    window.addEventListener("resize", function () { plot.setSize({ width: Math.max(el.clientWidth, 200), height: opts.height }); });
  }

  // The picker: datetime-local fields read in the chosen zone, sent as RFC 3339 UTC.
  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function toField(text, local) {
    var t = Date.parse(text);
    if (isNaN(t) || !/[zZ]|[+-]\d\d:?\d\d$/.test(text)) return "";
    var d = new Date(t);
    if (local) return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    return d.toISOString().slice(0, 19);
  }

  function fromField(value, local) {
    if (!value) return "";
    if (value.length === 16) value += ":00";
    var d = local ? new Date(value) : new Date(value + "Z");
    return isNaN(d.getTime()) ? "" : d.toISOString().replace(".000Z", "Z");
  }

  function picker(form) {
    var params = new URL(window.location.href).searchParams;
    var since = form.querySelector("[data-lens-range-since]"), until = form.querySelector("[data-lens-range-until]");
    var radios = form.querySelectorAll("[data-lens-tz]");
    function fill() {
      var local = zone() === "local";
      since.value = toField(params.get("since") || "", local);
      until.value = toField(params.get("until") || "", local);
    }
    Array.prototype.forEach.call(radios, function (r) {
      r.checked = r.value === zone();
      r.addEventListener("change", function () { setZone(r.value); fill(); redrawAll(); });
    });
    fill();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var local = zone() === "local";
      window.location.assign(urlWithWindow(fromField(since.value, local), fromField(until.value, local)));
    });
    form.hidden = false;
  }

  function redrawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-lens-histogram]"), function (el) {
      el.textContent = "";
      histogram(el);
    });
  }

  onReady(function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-lens-range]"), picker);
    redrawAll();
  });
})();
