// Lens: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  onReady(function () {
    var form = document.querySelector("[data-lens-filters]");
    if (form) {
      // Submit only filled fields, so the URL is already canonical (no redirect hop).
      form.addEventListener("submit", function () {
        var key = form.querySelector("[data-lens-meta-key]");
        var value = form.querySelector("[data-lens-meta-value]");
        if (key && value && key.value.trim() && value.value.trim()) {
          var hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = "metadata." + key.value.trim();
          hidden.value = value.value.trim();
          form.appendChild(hidden);
          key.disabled = true;
          value.disabled = true;
        }
        Array.prototype.forEach.call(form.elements, function (el) {
          if (el.name && (el.type === "text" || el.type === "search") && !el.value.trim()) el.disabled = true;
        });
      });

      // Offer the values this organization has sent for the chosen metadata key.
      var metaKey = form.querySelector("[data-lens-meta-key]");
      var metaValue = form.querySelector("[data-lens-meta-value]");
      if (metaKey && metaValue) {
        var pick = function () {
          var lists = form.querySelectorAll("datalist[data-lens-meta-values-for]");
          var chosen = "dl-meta-values";
          Array.prototype.forEach.call(lists, function (list) {
            if (list.getAttribute("data-lens-meta-values-for") === metaKey.value.trim()) chosen = list.id;
          });
          metaValue.setAttribute("list", chosen);
        };
        metaKey.addEventListener("input", pick);
        metaKey.addEventListener("change", pick);
      }
    }

    // On a narrow window the filter panel starts folded, so the results come first
    // (unless it has an error to show). Without JavaScript it simply stays open.
    var fold = document.querySelector("[data-lens-collapse-narrow]");
    if (fold && window.matchMedia && window.matchMedia("(max-width: 860px)").matches &&
        !document.getElementById("filter-errors")) {
      fold.open = false;
    }

    // "/" jumps to the search box, as in most explorers.
    var search = document.querySelector("[data-lens-search]");
    if (search) {
      document.addEventListener("keydown", function (event) {
        var tag = (event.target.tagName || "").toLowerCase();
        if (event.key === "/" && tag !== "input" && tag !== "textarea" && tag !== "select") {
          event.preventDefault();
          if (fold) fold.open = true;
          search.focus();
        }
      });
    }

    // Chain page: open or close every call's detail at once.
    var calls = document.querySelectorAll("details.tl-call");
    var anchor = document.querySelector("[data-lens-expand]");
    if (calls.length && anchor) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Expand all";
      button.addEventListener("click", function () {
        var open = button.textContent === "Expand all";
        Array.prototype.forEach.call(calls, function (d) { d.open = open; });
        button.textContent = open ? "Collapse all" : "Expand all";
      });
      anchor.appendChild(button);
    }
  });
})();
