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

    // The filter panel is folded on a phone by its markup (filter_panel.html, lens.css):
    // nothing here changes the layout after load.
    var fold = document.querySelector("[data-lens-collapse-narrow]");

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

    // Tables of rows (the event list): j / k move through the rows, Enter opens the current one
    // (its link has the focus), as in mail readers and GitHub's lists.
    var table = document.querySelector("[data-lens-rows]");
    if (table) {
      var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr")).filter(function (row) {
        return row.querySelector("[data-lens-row-link]");
      });
      var current = -1;
      var move = function (step) {
        if (!rows.length) return;
        if (current >= 0) rows[current].classList.remove("is-current");
        current = Math.max(0, Math.min(rows.length - 1, current + step));
        rows[current].classList.add("is-current");
        rows[current].querySelector("[data-lens-row-link]").focus();
      };
      rows.forEach(function (row, index) {
        row.addEventListener("focusin", function () {
          if (current >= 0) rows[current].classList.remove("is-current");
          current = index;
          row.classList.add("is-current");
        });
      });
      document.addEventListener("keydown", function (event) {
        var tag = (event.target.tagName || "").toLowerCase();
        if (event.altKey || event.ctrlKey || event.metaKey || tag === "input" || tag === "textarea" || tag === "select") return;
        if (event.key === "j") { event.preventDefault(); move(1); }
        else if (event.key === "k") { event.preventDefault(); move(current < 0 ? 1 : -1); }
      });
    }

    // Copy buttons beside shortened ids: the full value to the clipboard.
    Array.prototype.forEach.call(document.querySelectorAll("[data-lens-copy]"), function (button) {
      button.addEventListener("click", function () {
        var done = function () {
          button.setAttribute("data-copied", "");
          button.textContent = "Copied";
          setTimeout(function () { button.removeAttribute("data-copied"); button.textContent = "Copy"; }, 1500);
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(button.getAttribute("data-lens-copy")).then(done, function () {});
        }
      });
    });

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
