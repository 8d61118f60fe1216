// Lens search box: autocomplete of the query language's qualifiers and of known values.
// Progressive enhancement only: without this file the box is a plain text field, and the
// syntax card, facets and saved views all work; it also fetches the deferred metadata facet.
// Everything offered is read from the page:
// the syntax card (qualifiers) and the filter panel's datalists (values).
(function () {
  "use strict";

  var MAX = 12;

  function bare(value) { return /^[^\s",\\*]+$/.test(value); }
  function quote(value) {
    return bare(value) ? value : '"' + value.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
  }
  function options(list) {
    return list ? Array.prototype.map.call(list.querySelectorAll("option"), function (o) { return o.value; }) : [];
  }

  function init(input) {
    var form = input.form;
    var box = input.parentNode;
    var listbox = document.createElement("ul");
    listbox.id = input.id + "-suggest";
    listbox.className = "query-suggest";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", "Suggestions");
    listbox.hidden = true;
    box.appendChild(listbox);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", listbox.id);
    input.setAttribute("aria-expanded", "false");

    var qualifiers = Array.prototype.map.call(document.querySelectorAll("[data-lens-qualifier]"), function (el) {
      return { insert: el.getAttribute("data-lens-qualifier"), values: el.getAttribute("data-lens-values"),
               help: el.querySelector("dd") ? el.querySelector("dd").textContent : "" };
    });
    var items = [], active = -1, token = null;

    function valuesFor(name) {
      if (name === "has" || name === "no") return options(document.getElementById("dl-presence"));
      if (name.indexOf("metadata.") === 0) {
        var key = name.slice(9).replace(/^"|"$/g, "");
        var lists = form.querySelectorAll("datalist[data-lens-meta-values-for]");
        for (var i = 0; i < lists.length; i++) {
          if (lists[i].getAttribute("data-lens-meta-values-for") === key) return options(lists[i]);
        }
        return [];
      }
      for (var j = 0; j < qualifiers.length; j++) {
        if (qualifiers[j].insert === name + ":" && qualifiers[j].values) {
          return options(document.getElementById("dl-" + qualifiers[j].values));
        }
      }
      return [];
    }

    // The term being typed: from the last space before the caret to the caret.
    function current() {
      var caret = input.selectionStart === null ? input.value.length : input.selectionStart;
      var before = input.value.slice(0, caret);
      var start = before.search(/\S*$/);
      var text = before.slice(start);
      if (text.charAt(0) === "-") { start += 1; text = text.slice(1); }
      return { start: start, end: caret, text: text };
    }

    function suggest() {
      token = current();
      var text = token.text, found = [], lower = text.toLowerCase();
      var colon = text.indexOf(":");
      if (colon < 0 && lower.indexOf("metadata.") === 0) {
        options(document.getElementById("dl-meta-keys")).forEach(function (key) {
          var insert = "metadata." + quote(key) + ":";
          if (insert.toLowerCase().indexOf(lower) === 0) found.push({ label: insert, insert: insert, more: true });
        });
      } else if (colon < 0 && text) {
        qualifiers.forEach(function (q) {
          if (q.insert.toLowerCase().indexOf(lower) === 0) found.push({ label: q.insert, hint: q.help, insert: q.insert, more: true });
        });
      } else if (colon > 0) {
        var name = text.slice(0, colon).toLowerCase(), rest = text.slice(colon + 1);
        var comma = rest.lastIndexOf(",");
        var head = text.slice(0, colon + 1) + rest.slice(0, comma + 1), typed = rest.slice(comma + 1).toLowerCase();
        valuesFor(name.indexOf("metadata.") === 0 ? text.slice(0, colon) : name).forEach(function (value) {
          if (value.toLowerCase().indexOf(typed) >= 0 && found.length < MAX) {
            found.push({ label: head + quote(value), insert: head + quote(value) + " " });
          }
        });
      }
      show(found.slice(0, MAX));
    }

    function show(found) {
      items = found; active = -1;
      listbox.textContent = "";
      found.forEach(function (item, index) {
        var li = document.createElement("li");
        li.id = listbox.id + "-" + index;
        li.setAttribute("role", "option");
        var code = document.createElement("code");
        code.textContent = item.label;
        li.appendChild(code);
        if (item.hint) {
          var hint = document.createElement("span");
          hint.className = "hint";
          hint.textContent = " " + item.hint;
          li.appendChild(hint);
        }
        li.addEventListener("mousedown", function (event) { event.preventDefault(); accept(index); });
        listbox.appendChild(li);
      });
      listbox.hidden = !found.length;
      input.setAttribute("aria-expanded", found.length ? "true" : "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = (index + items.length) % items.length;
      Array.prototype.forEach.call(listbox.children, function (li, i) {
        li.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      input.setAttribute("aria-activedescendant", listbox.id + "-" + active);
    }

    function accept(index) {
      var item = items[index];
      var value = input.value;
      input.value = value.slice(0, token.start) + item.insert + value.slice(token.end);
      var caret = token.start + item.insert.length;
      input.setSelectionRange(caret, caret);
      input.focus();
      if (item.more) suggest(); else show([]);
    }

    input.addEventListener("input", suggest);
    input.addEventListener("blur", function () { show([]); });
    input.addEventListener("keydown", function (event) {
      if (listbox.hidden) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        highlight(active + (event.key === "ArrowDown" ? 1 : -1));
      } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
        event.preventDefault();
        accept(active);
      } else if (event.key === "Escape") {
        show([]);
      }
    });
  }

  // The metadata facet counts every matching event: the page comes first, the facet after
  // (server-rendered HTML, escaped there). Without script its link counts it in the page.
  function loadFacet(box) {
    fetch(box.getAttribute("data-lens-facet"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        if (holder.firstElementChild) box.replaceWith(holder.firstElementChild);
      })
      .catch(function () { box.removeAttribute("aria-busy"); });
  }

  function ready() {
    var input = document.querySelector("[data-lens-query]");
    if (input) init(input);
    Array.prototype.forEach.call(document.querySelectorAll("[data-lens-facet]"), loadFacet);
  }
  if (document.readyState !== "loading") ready(); else document.addEventListener("DOMContentLoaded", ready);
})();
