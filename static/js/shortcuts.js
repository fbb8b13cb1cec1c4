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

  function openHelp() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && !dialog.open) {
      dialog.showModal();
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
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
