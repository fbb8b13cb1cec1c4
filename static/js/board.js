/* Pipeline board: drag a card onto another column with native HTML5 drag events. A drop only
   fills in the card's own "Move to" form and submits it (the same form keyboard and no-JS users
   use). However the form is sent (a drop, or the card's "Move…" menu), the card moves to its new
   column at once; the server answers with the re-rendered columns, or an alert and the card goes
   back. */
(function () {
  "use strict";

  var dragged = null;
  var pending = null; // {card, parent, next, form, from} while a dropped move is in flight

  function columnOf(element) {
    return element && element.closest ? element.closest("[data-drop-column]") : null;
  }

  function clearTargets() {
    document.querySelectorAll(".is-drop-target").forEach(function (column) {
      column.classList.remove("is-drop-target");
    });
  }

  function freshKey() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID().replace(/-/g, "");
    }
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function alertInFeedback(text) {
    var feedback = document.getElementById("board-feedback");
    if (!feedback) {
      return;
    }
    var alert = document.createElement("div");
    alert.className = "alert alert-error";
    alert.setAttribute("role", "alert");
    alert.textContent = text;
    feedback.replaceChildren(alert);
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest("[data-card][draggable=true]");
    if (!card || (pending && document.body.contains(pending.form))) {
      return; // one dropped move at a time
    }
    pending = null;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
    card.classList.add("is-dragging");
  });

  document.addEventListener("dragend", function () {
    if (dragged) {
      dragged.classList.remove("is-dragging");
    }
    dragged = null;
    clearTargets();
  });

  document.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!dragged || !column || column.dataset.columnKind === "other") {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("is-drop-target")) {
      clearTargets();
      column.classList.add("is-drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    var card = dragged;
    if (!card || !column) {
      return;
    }
    event.preventDefault();
    clearTargets();
    var target = column.dataset.dropColumn;
    var form = card.querySelector("[data-move-form]");
    var select = form && form.querySelector("select[name=target]");
    if (!select || target === card.dataset.column) {
      return;
    }
    select.value = target;
    form.requestSubmit(); // showMove (below) moves the card as the form goes
  });

  function cssEscape(text) {
    return window.CSS && window.CSS.escape ? window.CSS.escape(text) : text.replace(/"/g, '\\"');
  }

  /* Show a move at once, before the server answers: the card goes to the top of its target
     column (Lost first asks for a reason, so a card bound there stays put until then). */
  function showMove(form) {
    var card = form.closest("[data-card]");
    var select = form.querySelector("select[name=target]");
    if (!card || !select || select.value === card.dataset.column) {
      return;
    }
    var item = card.parentNode; // the card's <li>
    pending = { item: item, parent: item.parentNode, next: item.nextSibling, form: form,
      from: card.dataset.column, select: select };
    var column = document.querySelector(
      '#board-columns [data-drop-column="' + cssEscape(select.value) + '"]');
    if (column && column.dataset.columnKind !== "lost") {
      var list = column.querySelector("[data-cards]");
      var empty = list && list.querySelector(".column-empty");
      if (empty) {
        empty.remove();
      }
      if (list) {
        var menu = card.querySelector("details[open]");
        if (menu) {
          menu.open = false;
        }
        list.insertBefore(item, list.firstChild);
      }
    }
    card.setAttribute("aria-busy", "true");
  }

  // Capture phase: runs before htmx sends the form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.matches && form.matches("[data-move-form]") && !event.defaultPrevented) {
      showMove(form);
    }
  }, true);

  function undo() {
    var move = pending;
    pending = null;
    if (!move) {
      return;
    }
    if (move.item.parentNode !== move.parent) {
      move.parent.insertBefore(move.item, move.next);
    }
    move.select.value = move.from;
    var card = move.item.querySelector("[data-card]");
    if (card) {
      card.removeAttribute("aria-busy");
    }
    var key = move.form.querySelector("[data-idempotency-key]");
    if (key) {
      key.value = freshKey(); // a retry is a new attempt, not a replay of the failed one
    }
  }

  document.body.addEventListener("htmx:afterRequest", function (event) {
    // A saved move replaced the form's column, so htmx tells its parent instead, with the
    // parent as detail.elt; the request's own element is the form.
    var config = event.detail.requestConfig;
    var form = (config && config.elt) || event.detail.elt;
    if (!form || !form.matches || !form.matches("[data-move-form]")) {
      return;
    }
    var xhr = event.detail.xhr;
    var failed = !xhr || xhr.status === 0 || xhr.status >= 400;
    if (failed) {
      if (pending && pending.form === form) {
        undo();
      } else {
        var key = form.querySelector("[data-idempotency-key]");
        if (key) {
          key.value = freshKey();
        }
      }
      if (!xhr || xhr.status === 0) {
        alertInFeedback("The move could not be sent. Check your connection and try again.");
      } else if (!/^(400|409|422|429|502|503)$/.test(String(xhr.status))) {
        alertInFeedback("The move failed (HTTP " + xhr.status + "). The card is back where it was.");
      }
      return;
    }
    pending = null;
    var card = form.closest("[data-card]");
    movedCard = xhr.status < 300 && card ? card.id : null;
  });

  // After a move the focus goes to the moved card, in its new column.
  var movedCard = null;
  document.body.addEventListener("htmx:afterSettle", function () {
    if (!movedCard) {
      return;
    }
    var card = document.getElementById(movedCard);
    movedCard = null;
    if (card && !card.querySelector("[data-reason]")) {
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }
  });

  // The Lost reason form arrives in place of the card: put the focus on its select.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var card = target && target.id ? document.getElementById(target.id) : null;
    var reason = card && card.querySelector && card.querySelector("[data-reason]");
    if (reason) {
      reason.focus();
    }
  });
})();
