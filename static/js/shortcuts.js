/* Keyboard shortcuts: "/" search, "j"/"k" move through the list rows, Enter opens the row,
   "e" edits the focused (or first) field on a deal, "?" lists them all. Keys typed into a form
   control are never taken. */
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.closest) {
      return false;
    }
    return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]"));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#deal-table tr[data-row]"));
  }

  function focusedRow() {
    return document.querySelector("#deal-table tr[data-row].is-focused");
  }

  function moveRow(step) {
    var all = rows();
    if (!all.length) {
      return;
    }
    var current = focusedRow();
    var index = current ? all.indexOf(current) + step : (step > 0 ? 0 : all.length - 1);
    index = Math.max(0, Math.min(all.length - 1, index));
    if (current) {
      current.classList.remove("is-focused");
      current.removeAttribute("aria-current");
    }
    var row = all[index];
    row.classList.add("is-focused");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector(".cell-name a");
    if (link) {
      link.focus(); // the focus ring and screen readers follow the row
    }
    row.scrollIntoView({ block: "nearest" });
  }

  function editField() {
    var active = document.activeElement;
    var field = active && active.closest ? active.closest(".field") : null;
    var button = field && field.querySelector(".edit-trigger button");
    if (!button) {
      button = document.querySelector("#deal-fields .edit-trigger button");
    }
    if (button) {
      button.click();
    }
  }

  var opener = null; // what had the focus when the dialog opened: it gets it back

  function openHelp() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && !dialog.open) {
      opener = document.activeElement;
      dialog.showModal();
    }
  }

  // In the search box, Escape leaves it (the query stays) and ArrowDown moves into the results.
  function searchKeys(event) {
    if (event.target.id !== "filter-q") {
      return false;
    }
    if (event.key === "Escape") {
      event.preventDefault(); // the browser would clear the query
      var count = document.getElementById("result-count");
      if (count) {
        count.focus();
      } else {
        event.target.blur();
      }
      return true;
    }
    if (event.key === "ArrowDown" && rows().length) {
      event.preventDefault();
      var current = focusedRow();
      if (current) {
        current.classList.remove("is-focused");
        current.removeAttribute("aria-current");
      }
      moveRow(1);
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (searchKeys(event)) {
      return;
    }
    if (document.querySelector("dialog[open]") || typing(event.target)) {
      return;
    }
    var key = event.key;
    if (key === "/") {
      var search = document.getElementById("filter-q");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    } else if (key === "j" || key === "k") {
      if (rows().length) {
        event.preventDefault();
        moveRow(key === "j" ? 1 : -1);
      }
    } else if (key === "Enter") {
      var row = focusedRow();
      var link = row && row.querySelector(".cell-name a");
      if (link && event.target === document.body) {
        event.preventDefault();
        link.click();
      }
    } else if (key === "e") {
      if (document.getElementById("deal-fields")) {
        event.preventDefault();
        editField();
      }
    } else if (key === "?") {
      event.preventDefault();
      openHelp();
    }
  });

  // A row clicked or tabbed into becomes the j/k starting point.
  document.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("#deal-table tr[data-row]");
    if (!row || row.classList.contains("is-focused")) {
      return;
    }
    var current = focusedRow();
    if (current) {
      current.classList.remove("is-focused");
      current.removeAttribute("aria-current");
    }
    row.classList.add("is-focused");
    row.setAttribute("aria-current", "true");
  });

  var help = document.getElementById("shortcuts-dialog");
  if (help) {
    help.addEventListener("close", function () {
      var kept = opener && opener !== document.body && document.body.contains(opener);
      var back = kept ? opener : document.getElementById("main");
      opener = null;
      if (back) {
        back.focus();
      }
    });
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-close-dialog]");
    if (close) {
      var dialog = close.closest("dialog");
      if (dialog) {
        dialog.close();
      }
    }
  });
})();
